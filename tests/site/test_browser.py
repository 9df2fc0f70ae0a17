"""A newcomer's path in a real browser: the real server, Debian's chromium, a test-mode donation.

Starts `filmfund run` as a subprocess on a free port with its own instance folder, then drives
chromium through Playwright: type an amount, see the live tier, pledge, pay on the test checkout,
land on a thank-you page that says "paid", and see the campaign's total move.
"""
from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.screens import assert_fits, shot

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
BIN = Path(sys.executable).parent / "filmfund"
PRODUCER_PASSWORD = "browser-producer-password"


@pytest.fixture(autouse=True)
def _user_per_request():
    """This module needs no in-process app (nor a database parameter): the server is a subprocess."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env, *args, stdin: str | None = None) -> str:
    result = subprocess.run([str(BIN), *args], env=env, cwd=ROOT, input=stdin, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


# What `filmfund campaign load` and `filmfund users create EMAIL --role producer --password-stdin`
# do, run by the same command line in one process: a process for each, importing the app, cost
# every browser module seconds more.
_PREPARE = """import sys
from filmfund.cli import main
for args in (["campaign", "load"], ["users", "create", sys.argv[1], "--role", "producer", "--password-stdin"]):
    main(args, standalone_mode=False)
"""


def _migrated_database(instance: Path, env: dict) -> None:
    """The instance's database as `filmfund db upgrade` makes it: migrated once per test process
    (its migrations took 3 to 6 s, paid again by each of the sixteen browser modules), then copied
    for each site by SQLite's backup, which reads the migrated file and its WAL as one."""
    if "FILMFUND_DATABASE_URL" in env:  # a site on another database: migrated where it is
        result = subprocess.run([str(BIN), "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr + result.stdout
        return
    migrated = instance.parent / "migrated-schema"  # the process's own temporary folder (xdist: per worker)
    if not (migrated / "filmfund.db").exists():
        migrated.mkdir(exist_ok=True)
        result = subprocess.run([str(BIN), "db", "upgrade"], env={**env, "FILMFUND_INSTANCE_DIR": str(migrated)},
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr + result.stdout
    source, copy = sqlite3.connect(migrated / "filmfund.db"), sqlite3.connect(instance / "filmfund.db")
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()


def _prepare(env, email: str, password: str) -> None:
    """The instance's schema by its migrations, the campaign loaded, and one producer."""
    _migrated_database(Path(env["FILMFUND_INSTANCE_DIR"]), env)
    result = subprocess.run([sys.executable, "-c", _PREPARE, email], env=env, cwd=ROOT, input=password + "\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout


@dataclass
class Server:
    url: str
    log: Path

    def errors(self) -> str:
        lines = self.log.read_text().splitlines()
        return "\n".join([line for line in lines if "rror" in line][-15:])


@contextmanager
def running_site(instance: Path, email: str, password: str, settings: dict[str, str] | None = None):
    """`filmfund run` (site and embedded worker) as a subprocess on a free port, over a fresh
    instance folder with the campaign loaded and one producer: yields (base URL, env, log path).
    Every browser test module starts its site through this; `settings`: FILMFUND_* variables."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRIPE_", "FILMFUND_"))}
    env["FILMFUND_INSTANCE_DIR"] = str(instance)
    env.update(settings or {})
    _prepare(env, email, password)
    port = _free_port()
    log = (instance / "server.log").open("w")
    proc = subprocess.Popen([str(BIN), "run", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded CI machine can be slow to import everything
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not start:\n" + (instance / "server.log").read_text())
            time.sleep(0.2)
        yield base, env, instance / "server.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the worker it started, nothing else
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def server_log_tail(log: Path, chars: int = 3000) -> str:
    """The end of a site's log for a failure's message, without its access lines: a test that polls
    a page for minutes would otherwise fill the tail with them and hide the worker's lines."""
    lines = [line for line in log.read_text().splitlines() if " filmfund.access " not in line]
    return "\n".join(lines)[-chars:]


def sign_in_producer_first_time(page, base: str, email: str, password: str) -> None:
    """A producer's first sign-in in the browser: password, then the second factor's enrolment,
    with the code computed from the shown secret as an authenticator app would; ends on /admin/."""
    from tests.test_auth_staff import rfc6238

    page.goto(base + "/login")
    page.fill("#login-email", email)
    page.click("summary")
    page.fill("#login-password", password)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/login/2fa/setup")
    page.fill("#totp-code", rfc6238(page.inner_text("#totp-secret").strip(), time.time()))
    page.click("button[type=submit].primary")
    page.wait_for_url("**/admin/")


def sign_in_link(instance: Path, address: str) -> str:
    """The link of the sign-in mail to `address`, once the site's worker has written it (it is queued)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in (instance / "outbox").glob("*.eml"):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if msg["To"] == address:
                found = re.search(r"https?://\S+/login/magic/\S+", msg.get_body(("plain",)).get_content())
                if found:
                    return found.group(0)
        time.sleep(0.3)
    raise AssertionError(f"no sign-in link for {address} within 60 s")


def give_in_browser(page, base: str, amount: str, address: str) -> None:
    """A gift from the campaign page, paid on the test checkout; ends on the thank-you page."""
    page.goto(base + "/")
    page.fill("#amount", amount)
    page.fill("#email", address)
    page.click("#pledge-form button[type=submit]")
    page.wait_for_url("**/checkout/test/**")
    page.click("button[value=paid]")
    page.wait_for_url("**/thank-you**")


def sign_in_donor(page, base: str, instance: Path, address: str) -> None:
    """A donor's sign-in in the browser: the address on /login, then the mailed link (the site's
    worker writes it to the instance's outbox) and its button; ends on /account."""
    page.goto(base + "/login")
    page.fill("#login-email", address)
    page.click("form button[type=submit].primary")
    page.goto(sign_in_link(instance, address))
    page.click("form button[type=submit]")
    page.wait_for_url("**/account**")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("browser-instance"), "producer@filmfund.test",
                      PRODUCER_PASSWORD) as (base, _env, log):
        yield Server(base, log)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM,
                                      args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        yield chromium
        chromium.close()


def _wait_for_thank_you(page, server) -> None:
    """Wait for the thank-you page; on failure say what the server logged (a 500, a stale schema...)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_url("**/thank-you?pledge=*", timeout=20000)
    except PlaywrightTimeout:
        pytest.fail("no thank-you page; the server logged:\n" + server.errors())


def test_donation_in_a_real_browser(server, browser, tmp_path):
    from playwright.sync_api import expect


    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server.url + "/")
    expect(page.locator("h1")).to_contain_text("Living with Dead Hearts")
    expect(page.locator("#raised-amount")).to_have_text("$0")

    page.fill("#amount", "55")
    preview = page.locator("#tier-preview")
    expect(preview).to_contain_text("Collector")
    expect(preview).to_contain_text("A DVD of the finished film")
    expect(preview).to_contain_text("Add $45 to reach Patron")
    expect(preview).to_contain_text("$11 of $55 goes to Xinxing Aid center")
    page.fill("#amount", "10.5")
    expect(preview).to_contain_text("Supporter")
    page.fill("#amount", "50")
    expect(preview).to_contain_text("Collector")
    # A screen reader hears the outcome's line once the typing pauses, and only when it changes
    # (a11y F8): keying in "55.50" within Collector says nothing again; reaching Patron says it once.
    status = page.locator("#tier-status")
    expect(status).to_have_text("This reaches the Collector tier ($50+).")
    assert preview.get_attribute("aria-live") is None and status.get_attribute("aria-live") == "polite"
    page.evaluate("""() => { window.statusChanges = 0; new MutationObserver((records) => {
        window.statusChanges += records.length; }).observe(document.getElementById("tier-status"),
        {childList: true, characterData: true, subtree: true}); }""")
    page.fill("#amount", "")
    page.locator("#amount").press_sequentially("55.50", delay=60)
    expect(preview).to_contain_text("$11.10 of $55.50")
    page.wait_for_timeout(800)
    assert page.evaluate("window.statusChanges") == 0
    page.fill("#amount", "120")
    expect(status).to_have_text("This reaches the Patron tier ($100+).")
    # one DVD at $100: the signed one, in place of the tier below's (holdings.replacements)
    expect(preview.locator("li").first).to_have_text("The DVD signed (in place of “A DVD of the finished film”)")
    assert page.evaluate("window.statusChanges") == 1
    page.fill("#amount", "50")
    expect(preview).to_contain_text("Collector")
    shot(page, tmp_path / "campaign.png")

    page.fill("#email", "browser-donor@example.org")
    page.fill("#credit_name", "Browser Donor")
    page.click("button[type=submit].primary")
    expect(page.locator(".test-stamp")).to_have_text("TEST MODE — no money moves")
    expect(page.locator("#checkout-amount")).to_have_text("$50.00")
    page.click("text=Pay (test)")

    _wait_for_thank_you(page, server)
    expect(page.locator("#payment-status")).to_have_attribute("data-state", "paid")
    expect(page.locator("h1")).to_contain_text("your donation is confirmed")

    page.goto(server.url + "/")
    expect(page.locator("#raised-amount")).to_have_text("$50")
    expect(page.locator("#donor-count")).to_have_text("1")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    page.close()


def test_mobile_width_and_producer_dashboard(server, browser, tmp_path):
    from playwright.sync_api import expect

    phone = browser.new_page(viewport={"width": 375, "height": 740})
    phone.goto(server.url + "/")
    assert_fits(phone, tmp_path, "campaign-mobile")
    phone.close()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in_producer_first_time(page, server.url, "producer@filmfund.test", PRODUCER_PASSWORD)
    expect(page.locator("h1")).to_have_text("Campaign dashboard")
    expect(page.locator("#raised-chart")).to_be_visible()
    shot(page, tmp_path / "dashboard.png")
    page.close()


def test_thank_you_page_follows_a_processing_payment(server, browser):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#amount", "15")
    page.fill("#email", "slow-bank@example.org")
    page.click("button[type=submit].primary")
    page.click("text=Payment still processing")
    _wait_for_thank_you(page, server)
    expect(page.locator("#payment-status")).to_have_attribute("data-state", "processing")
    expect(page.locator("h1")).to_have_text("Your payment is still processing")

    # the bank clears the payment; the donor's open page notices by itself
    pledge_id = page.url.split("pledge=")[1]
    bank = browser.new_page()
    bank.goto(f"{server.url}/checkout/test/{pledge_id}")
    bank.click("text=Payment clears (test)")
    expect(page.locator("#payment-status")).to_have_attribute("data-state", "paid", timeout=15000)
    expect(page.locator("h1")).to_contain_text("your donation is confirmed")
    bank.close()
    page.close()


KEPT = "sessionStorage.getItem('filmfund.pledge-form')"


def test_what_the_donor_typed_comes_back_after_a_cancel_and_a_language_switch(server, browser):
    """The browser review's section 5: back from a cancelled checkout, and after switching the
    language on a refused pledge, the email, the credit name, the boxes and the monthly choice are
    as the donor left them: kept in the tab's sessionStorage (static/js/pledge-keep.js), never in a
    URL; forgotten once the gift is paid. Without script the amount still comes back."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server.url + "/?lang=zh-Hans")
    page.check("#interval-month")
    page.fill("#amount", "40")
    page.fill("#email", "keep-me@example.org")
    page.fill("#credit_name", "王小明 🎬")
    page.check("input[name=anonymous]")
    page.click("#pledge-form button[type=submit]")
    page.wait_for_url("**/checkout/test/**")
    page.click("button[value=cancel]")
    page.wait_for_url("**/?amount=4000*cancelled=1*")
    assert "keep-me" not in page.url and "%E7%8E%8B" not in page.url  # neither the email nor the name
    expect(page.locator("#email")).to_have_value("keep-me@example.org")
    expect(page.locator("#credit_name")).to_have_value("王小明 🎬")
    expect(page.locator("#amount")).to_have_value("40")
    expect(page.locator("input[name=anonymous]")).to_be_checked()
    expect(page.locator("#interval-month")).to_be_checked()
    expect(page.locator("#rewards_opt_out")).not_to_be_checked()

    # A refused pledge (an amount no one can pay), then the top bar's switch to English.
    page.fill("#amount", "abc")
    page.uncheck("input[name=anonymous]")
    page.click("#pledge-form button[type=submit]")
    expect(page.locator("#amount-error")).to_be_visible()
    page.click("a.language-switch[hreflang=en]")
    page.wait_for_url("**/?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#amount")).to_have_value("abc")
    expect(page.locator("#email")).to_have_value("keep-me@example.org")
    expect(page.locator("#credit_name")).to_have_value("王小明 🎬")
    expect(page.locator("input[name=anonymous]")).not_to_be_checked()
    expect(page.locator("#interval-month")).to_be_checked()

    # Paid: the tab forgets the form.
    page.fill("#amount", "40")
    page.click("#pledge-form button[type=submit]")
    page.wait_for_url("**/checkout/test/**")
    page.click("button[value=paid]")
    _wait_for_thank_you(page, server)
    expect(page.locator("#payment-status")).to_have_attribute("data-state", "paid")
    assert page.evaluate(KEPT) is None
    page.goto(server.url + "/?amount=4000&cancelled=1")
    expect(page.locator("#email")).to_have_value("")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    context.close()

    # Without script: the form still pledges, and a cancel brings the amount back (the server's).
    plain = browser.new_context(java_script_enabled=False)
    page = plain.new_page()
    page.goto(server.url + "/")
    page.fill("#amount", "25")
    page.fill("#email", "no-script@example.org")
    page.click("#pledge-form button[type=submit]")
    page.wait_for_url("**/checkout/test/**")
    page.click("button[value=cancel]")
    page.wait_for_url("**/?amount=2500*")
    expect(page.locator("#amount")).to_have_value("25")
    expect(page.locator("#email")).to_have_value("")
    plain.close()
