"""Runs the fake OpenAI server in its own process for benchmarks (so its CPU is not Keel's):
python -m benchmarks.fake_provider_server PORT TOKENS TOKEN_DELAY_SECONDS"""

from __future__ import annotations

import sys

import uvicorn

from tests.fakes.openai_api import FakeOpenAI

if __name__ == "__main__":
    port, tokens, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    fake = FakeOpenAI()
    fake.chat.reply = " ".join(f"tok{i}" for i in range(tokens))
    fake.chat.token_delay = delay
    uvicorn.run(fake.app(), host="127.0.0.1", port=port, log_level="warning", backlog=4096)
