"""Retrieval evaluation (BEIR format in, TREC run out, trec_eval metrics): tooling for `keel eval`."""
