"""Drives the helpdesk console in headless Chromium, as an operator would: sign in
(once with a wrong password), look up a user, drain a server through its confirmation
page, upload a helper report, sign out. Prints what each page showed as one JSON
object for the caller to check (tests/console.rs), and with a folder as the last
argument saves a screenshot of each page there (scripts/console-screenshot).

    python3 console_browser.py BASE_URL OPERATOR PASSWORD USER SERVER REPORT.json [SHOTS_DIR]

Needs Debian's chromium and chromium-driver and PyPI's selenium. Bounded: every wait
gives up after 20 s and the whole run after 150 s, and the browser is always closed.
"""

import json
import os
import shutil
import signal
import sys
import tempfile

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, operator, password, user, server, report = sys.argv[1:7]
shots = sys.argv[7] if len(sys.argv) > 7 else ""
os.environ["SE_AVOID_STATS"] = "true"  # no telemetry from Selenium


class Timeout(Exception):
    pass


def give_up(signum, frame):
    raise Timeout("the browser run took longer than 150 s")


signal.signal(signal.SIGALRM, give_up)
signal.alarm(150)

options = webdriver.ChromeOptions()
options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
profile = tempfile.mkdtemp(prefix="console-chromium-")
for flag in [
    "--headless=new",
    "--no-sandbox",  # tests run as root in containers
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1280,900",
    "--hide-scrollbars",
    f"--user-data-dir={profile}",
    # Loopback only: no proxy, and none of the browser's own traffic to the internet.
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--dns-prefetch-disable",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
]:
    options.add_argument(flag)
driver_path = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
seen = {}
driver = None


def element(css):
    return driver.find_element(By.CSS_SELECTOR, css)


def text(css):
    return element(css).text


def wait_for_page(prefix):
    """Waits until the page's heading starts with `prefix`; returns the heading."""
    # The heading is read in one script call: an element handle taken while the
    # page is being replaced can belong to the old document, which Chromium reports
    # as an inspector error rather than a stale element.
    read = "const h = document.querySelector('h1'); return h ? h.innerText : '';"
    heading = WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda d: (lambda t: t if t.startswith(prefix) else None)(d.execute_script(read))
    )
    return heading


def shot(name):
    if not shots:
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, min(height, 1600)))
    driver.save_screenshot(os.path.join(shots, f"{name}.png"))
    driver.set_window_size(1280, 900)


def sign_in(secret):
    field = element("#username")
    field.clear()
    field.send_keys(operator)
    element("#password").send_keys(secret)
    element("#sign-in").click()


try:
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(20)

    # A page asked for without a session leads to the sign-in form.
    driver.get(f"{base}/console/user?q={user}")
    seen["login_heading"] = wait_for_page("Sign in")
    seen["login_url"] = driver.current_url
    shot("login")
    sign_in("not the password")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".error"))
    seen["wrong_password"] = text(".error")
    sign_in(password)
    seen["after_login"] = wait_for_page("Look up a user")
    seen["after_login_url"] = driver.current_url

    # The site map, and a lookup from its form.
    driver.find_element(By.LINK_TEXT, "Site map").click()
    seen["map_heading"] = wait_for_page("Site map")
    seen["operator"] = text("#operator")
    seen["letter_owner_before"] = text(f"#letter-{user[0]} .owner")
    element("#q").send_keys(user)
    element("#lookup").click()
    wait_for_page("Look up a user")
    seen["lookup"] = {
        "subject": text("#subject"),
        "user": text("#user"),
        "letter": text("#letter"),
        "alias": text("#alias"),
        "server": text("#server"),
        "settings": text("#settings"),
        "queue": text("#queue") if driver.find_elements(By.CSS_SELECTOR, "#queue") else "",
    }
    shot("lookup")

    # Drain a server: a confirmation page, then the change.
    driver.find_element(By.LINK_TEXT, "Site map").click()
    wait_for_page("Site map")
    element(f"#maintenance-{server}").click()
    seen["confirm_heading"] = wait_for_page("Drain")
    seen["confirm_text"] = text("main")
    shot("confirm")
    element("#confirm").click()
    wait_for_page("Site map")
    seen["flash"] = text(".flash")
    seen["server_state_after"] = text(f"#server-{server} .state")
    seen["letter_owner_after"] = text(f"#letter-{user[0]} .owner")
    shot("sitemap")

    # A helper report, uploaded as a file, next to the site's truth.
    driver.find_element(By.LINK_TEXT, "Helper report").click()
    wait_for_page("Helper report")
    element("#report-file").send_keys(os.path.abspath(report))
    element("#explain").click()
    seen["report_heading"] = wait_for_page("Helper report for")
    seen["causes"] = text("#causes")
    seen["names"] = text("#names")
    # Everything on the page, folded parts (a step's details and transcript) included.
    seen["report_text"] = driver.execute_script("return document.querySelector('main').textContent")
    seen["report_html_has_script"] = "<script" in driver.page_source.lower()
    shot("report")

    # Sign out: the session ends.
    element("header .signout button").click()
    wait_for_page("Sign in")
    seen["signed_out"] = text(".flash")
    driver.get(f"{base}/console")
    seen["after_signout"] = wait_for_page("Sign in")
finally:
    signal.alarm(0)
    if driver is not None:
        driver.quit()
    shutil.rmtree(profile, ignore_errors=True)

print(json.dumps(seen))
