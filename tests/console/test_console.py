"""The console in Debian's Chromium (headless, through Playwright) against `keel serve` and a worker: sign up,
upload a document and see it become ready, ask and see the answer arrive in several steps with its sources,
stop an answer, resume one after the socket dropped, see the usage change. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import shutil
import socket
import uuid

import pytest

from src.config import REPO_ROOT
from tests.conftest import free_port, keel_serve, run_keel, start_worker, stop_worker
from tests.fakes.oauth_provider import CLIENT_ID, CLIENT_SECRET, FakeAccount, FakeOAuthProvider, ServedApp
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.stripe_api import FakeStripe

pytestmark = pytest.mark.slow
SHOTS = REPO_ROOT / "test-artifacts" / "console"
LONG_REPLY = " ".join(["Glaciers carve fjords as they move [1]."] * 40)
# the lowest contrast ratio (WCAG) between visible text and the background it sits on
LOWEST_CONTRAST = """() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 :
      ((v + 0.055) / 1.055) ** 2.4; }).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  let lowest = 21, where = "";
  for (const el of document.querySelectorAll("h1,h2,h3,p,label,li,td,th,button,span,strong,mark")) {
    if (!el.offsetParent || !el.textContent.trim()) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < lowest) { lowest = ratio; where = el.tagName + " " + el.textContent.slice(0, 30); }
  }
  return [lowest, where];
}"""
# counts every change to the streaming answer's text before the answer is final
COUNT_UPDATES = """() => { window.updates = 0; new MutationObserver(() => {
    const last = [...document.querySelectorAll('.message.assistant')].pop();
    if (last && last.dataset.status === 'STREAMING') window.updates += 1; })
  .observe(document.getElementById('conversation'), {subtree: true, childList: true, characterData: true}); }"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed (`keel test` installs it as root: apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def keel(test_env):
    fake = FakeOpenAI()
    fake.chat.token_delay = 0.05
    with fake.serve() as served:
        env = {**test_env, "KEEL_OPENAI_API_KEY": fake.api_key, "KEEL_OPENAI_BASE_URL": served.url + "/v1"}
        worker = start_worker(env)
        try:
            with keel_serve(env) as (base, _):
                yield base, fake, env
        finally:
            stop_worker(worker)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_sign_up_upload_ask_stop_and_see_usage_in_a_real_browser(browser, keel):
    base, fake, env = keel
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(base)
    shot(page, "1-sign-in")
    email = f"console-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("a long enough pass phrase")
    page.get_by_role("button", name="Sign up", exact=True).click()
    page.wait_for_selector(f"#who:has-text('{email}')")
    usage_before = page.text_content("#usage")
    page.wait_for_selector(f"#members li:has-text('{email}')")
    page.wait_for_selector("#plan:has-text('free')")
    page.wait_for_selector("#soft-cap:has-text('Today 0 tokens')")

    page.set_input_files("#file", files=[{"name": "glaciers.md", "mimeType": "text/markdown",
                                          "buffer": b"# Glaciers\n\nGlaciers carve fjords along the coast."}])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("#documents .status[data-status=QUEUED], #documents .status[data-status=PROCESSING], "
                           "#documents .status[data-status=READY]")
    page.wait_for_selector("#documents .status[data-status=READY]", timeout=120_000)  # live, by subscription
    shot(page, "2-document-ready")

    page.get_by_label("Search the documents").fill("fjords")
    page.get_by_label("Mode").select_option("KEYWORD")
    page.get_by_role("button", name="Search", exact=True).click()
    mark = page.wait_for_selector("#hits li mark")
    assert mark.text_content().lower().startswith("fjord") and "glaciers.md" in page.text_content("#hits")

    page.evaluate(COUNT_UPDATES)
    page.get_by_label("Question").fill("How do glaciers make fjords?")
    page.get_by_role("button", name="Send", exact=True).click()
    answer = page.wait_for_selector(".message.assistant[data-status=COMPLETE]", timeout=60_000)
    assert page.evaluate("window.updates") >= 3  # tokens arrived one by one, before the final message
    assert "Glaciers carve fjords" in answer.text_content() and "Sources: [1] glaciers" in answer.text_content()
    page.wait_for_function("(before) => document.getElementById('usage').textContent !== before", arg=usage_before)
    assert "tokens" in page.text_content("#usage")
    answer.query_selector("button:has-text('Good answer')").click()
    page.wait_for_selector(".message.assistant .rating[data-rating=UP]")
    shot(page, "3-answer")

    fake.chat.reply = LONG_REPLY  # 280 tokens at 20/s: time to press Stop
    page.get_by_label("Question").fill("Tell me everything about fjords.")
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_function("() => { const a = [...document.querySelectorAll('.message.assistant')].pop();"
                           " return a.dataset.messageId && a.querySelector('.text').textContent.length > 0; }")
    page.get_by_role("button", name="Stop", exact=True).click()
    stopped = page.wait_for_selector(".message.assistant[data-status=CANCELLED]", timeout=30_000)
    assert 0 < len(stopped.query_selector(".text").text_content()) < len(LONG_REPLY)
    shot(page, "4-stopped")

    # the socket drops mid-answer: the console resumes the answer from the last character it showed
    page.get_by_label("Question").fill("And once more, all about fjords?")
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_function("() => [...document.querySelectorAll('.message.assistant')].pop()"
                           ".querySelector('.text').textContent.length > 40")
    page.evaluate("() => { window.keel.dropSocket(); window.updates = 0; }")
    resumed = page.wait_for_selector(".message.assistant:last-child[data-status=COMPLETE]", timeout=60_000)
    assert page.evaluate("window.updates") >= 3  # streamed again after the drop, not only the final message
    assert resumed.query_selector(".text").text_content() == LONG_REPLY
    shot(page, "5-resumed")

    page.wait_for_selector("#conversations li button")  # the conversation is listed; opening it shows it again
    page.click("#conversations li button")
    page.wait_for_selector(".message.user:has-text('How do glaciers make fjords?')")

    # an admin (made as an operator makes one) sees the audit log, after a reload that keeps the session
    assert run_keel("users", "set-role", email, "admin", env=env).returncode == 0
    page.reload()
    page.get_by_role("button", name="Show the audit log and webhook events").click()
    page.wait_for_selector("#audit tr:has-text('auth.signed_up'), #audit tr:has-text('user.role_changed')")
    page.wait_for_selector(f"#users tr:has-text('{email}'):has-text('admin')")
    page.wait_for_selector(f"#users button:has-text('Make {email} a user')")
    shot(page, "6-admin")
    lowest, where = page.evaluate(LOWEST_CONTRAST)
    print(f"\nlowest text contrast on the page: {lowest:.2f} ({where})")
    assert where and lowest >= 4.5, (lowest, where)  # WCAG AA for normal text, everywhere on the page
    page.close()
    assert errors == []  # no script error on the way


def test_the_page_is_usable_at_phone_width_and_by_keyboard(browser, keel):
    base, _, _ = keel
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(base)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing off the side
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"  # the first field is the first stop
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    shot(page, "7-phone-width")
    page.close()



def test_sign_in_with_a_provider_then_upgrade_through_stripe_checkout(browser, test_env):
    """GitHub-shaped OAuth against the local fake provider (the button, the provider's redirect back to the
    console's callback page, the session), then the upgrade button opens the Stripe Checkout session that the
    local fake Stripe made (the checkout page itself is Stripe's: answered here by a stub route)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        provider = FakeOAuthProvider(base_url=f"http://127.0.0.1:{probe.getsockname()[1]}")
    provider.account = FakeAccount(f"sub-{uuid.uuid4().int % 10**9}", f"octo-{uuid.uuid4().hex[:6]}@example.com")
    stripe, port = FakeStripe(), free_port()
    with ServedApp(provider.app(), int(provider.base_url.rsplit(":", 1)[1])), stripe.serve() as stripe_served:
        env = {**test_env, "KEEL_PORT": str(port), "KEEL_OAUTH_GITHUB_CLIENT_ID": CLIENT_ID,
               "KEEL_OAUTH_GITHUB_CLIENT_SECRET": CLIENT_SECRET, "KEEL_OAUTH_GITHUB_WEB_URL": provider.base_url,
               "KEEL_OAUTH_GITHUB_API_URL": provider.base_url,
               "KEEL_OAUTH_REDIRECT_URL": f"http://127.0.0.1:{port}/oauth/{{provider}}/callback",
               "KEEL_STRIPE_API_KEY": stripe.api_key, "KEEL_STRIPE_API_BASE": stripe_served.url,
               "KEEL_STRIPE_PRICES": "pro=price_pro"}
        with keel_serve(env) as (base, _):
            page = browser.new_page()
            page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(body="Stripe Checkout"))
            page.goto(base)
            page.get_by_role("button", name="Continue with Github", exact=True).click()
            page.wait_for_selector(f"#who:has-text('{provider.account.email}')")
            assert page.url == f"{base}/"  # the single-use code is not left in the address bar
            page.get_by_role("button", name="Upgrade to pro", exact=True).click()
            page.wait_for_url("https://checkout.stripe.com/c/pay/**")
            assert [session["url"] for session in stripe.checkout_sessions] == [page.url]
            page.close()
