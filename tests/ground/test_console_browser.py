"""The web console in a real browser: the distribution's headless Chromium, driven by
Selenium through the distribution's chromedriver, against `ground serve` on a
mission of two flying sims. It sees a value change, sends a command and watches its
stages arrive, sees the command's event arrive, refuses an out-of-range argument before
sending anything, and switches to the second satellite and commands that one.

Skipped without Chromium and chromedriver (apt-get install chromium chromium-driver),
unless SKYRACK_REQUIRE_BROWSER is set (CI's .ci/browser sets it). SKYRACK_SCREENSHOT
names a PNG to save the console to (the README's).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    if os.environ.get("SKYRACK_REQUIRE_BROWSER"):
        raise RuntimeError("SKYRACK_REQUIRE_BROWSER is set, but chromium or chromedriver "
                           "is missing")
    pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)",
                allow_module_level=True)
pytest.importorskip("aiohttp")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[tuple]:
    """(browser on the console, the console's URL)."""
    from tests.skyrack.test_ground_cli import Sim

    work = tmp_path_factory.mktemp("console")
    sims = {"sat-1": Sim(), "sat-2": Sim("--spacecraft-id", "2")}
    from tests.ground.test_server import start_mission

    serve, url = start_mission(sims, work)  # a mission of two: the console shows sat-1 first
    browser = None
    try:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1000"):
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options,
                                   service=webdriver.ChromeService(executable_path=DRIVER))
        browser.get(url)
        yield browser, url
    finally:
        from tests.ground.test_server import ended

        gone = ended(serve, work)
        if browser is not None:
            browser.quit()
        serve.terminate()
        serve.wait(30)
        dead = [name for name, sim in sims.items() if sim.proc.poll() is not None]
        for name, sim in sims.items():
            if name not in dead:
                sim.stop()
        assert not gone, gone  # a server that died under the tests says why
        assert not dead, f"the sims of {', '.join(dead)} ended under the tests"


def _wait(browser, what: str, condition, timeout_s: float = 30.0):
    # The page redraws rows as telemetry comes: an element found may be gone a moment later.
    return WebDriverWait(browser, timeout_s, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda _: condition(), message=what)


def _cell(browser, point: str, column: str) -> str:
    return browser.find_element(
        By.CSS_SELECTOR, f'tr[data-point="{point}"] td.{column}').text


def test_a_value_changes_in_the_live_table(console) -> None:
    browser, _ = console
    _wait(browser, "the stream", lambda: browser.find_element(By.ID, "link").text == "live")
    first = _wait(browser, "a first value", lambda: _cell(browser, "fsw.ticks", "value")
                  not in ("", "—") and _cell(browser, "fsw.ticks", "value"))
    _wait(browser, "the value to change",
          lambda: _cell(browser, "fsw.ticks", "value") != first)
    assert _cell(browser, "power.batt_v", "unit") == "V"
    browser.find_element(By.ID, "point-filter").send_keys("power.")
    rows = browser.find_elements(By.CSS_SELECTOR, "#points tr")
    shown = [r.get_attribute("data-point") for r in rows if r.is_displayed()]
    assert shown and all(name.startswith("power.") for name in shown)
    browser.execute_script("const f = document.getElementById('point-filter'); f.value = '';"
                           "f.dispatchEvent(new Event('input'));")
    assert all(r.is_displayed() for r in browser.find_elements(By.CSS_SELECTOR, "#points tr"))


def test_a_command_sent_from_the_form_shows_its_stages_and_its_event(console) -> None:
    browser, _ = console
    Select(browser.find_element(By.ID, "command-name")).select_by_value("power.switch")
    args = browser.find_element(By.ID, "command-args")
    args.find_element(By.NAME, "channel").send_keys("9")  # out of range: refused here
    browser.find_element(By.ID, "send").click()
    assert "above 7" in browser.find_element(By.ID, "command-error").text
    assert browser.find_elements(By.CSS_SELECTOR, "#history tr") == []
    channel = args.find_element(By.NAME, "channel")
    channel.clear()
    channel.send_keys("2")
    Select(args.find_element(By.NAME, "on")).select_by_value("true")
    browser.find_element(By.ID, "send").click()
    stages = _wait(browser, "the completion report", lambda: (
        cells := browser.find_elements(By.CSS_SELECTOR, "#history tr td.stages"))
        and "completed" in cells[0].text and cells[0].text)
    assert stages == "accepted → started → completed"
    _wait(browser, "the event", lambda: browser.find_elements(
        By.CSS_SELECTOR, '#events li[data-name="power.switch_changed"]'))
    _wait(browser, "the switch in housekeeping",
          lambda: int(_cell(browser, "power.switches", "value")) & 0b100)


def test_a_plot_of_two_points_from_the_archive_and_live(console) -> None:
    browser, _ = console
    field = browser.find_element(By.ID, "plot-points")
    field.clear()
    field.send_keys("power.soc_pct,power.batt_v")
    browser.find_element(By.ID, "plot-go").click()
    counts = _wait(browser, "both series", lambda: (n := browser.execute_script(
        "return window.skyrackPlot.points.map(p => window.skyrackPlot.series.get(p).length)"))
        and all(n) and n)
    later = _wait(browser, "live samples", lambda: (m := browser.execute_script(
        "return window.skyrackPlot.points.map(p => window.skyrackPlot.series.get(p).length)"))
        and all(b > a for a, b in zip(counts, m, strict=True)) and m)
    assert len(later) == 2
    legend = browser.find_element(By.ID, "plot-legend").text
    assert "power.soc_pct" in legend and "power.batt_v" in legend and " V " in legend
    painted = browser.execute_script(
        "const c = document.getElementById('plot');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;")
    assert painted > 500  # lines were drawn
    browser.find_element(By.ID, "plot-points").send_keys(",power.nothing")
    browser.find_element(By.ID, "plot-go").click()
    _wait(browser, "the refusal", lambda: "not a telemetry point" in
          browser.find_element(By.ID, "plot-legend").text)


def test_a_job_appears_progresses_and_is_cancelled_from_its_row(console) -> None:
    browser, url = console
    from ground.remote import ServerClient

    job = ServerClient(url).send("someone", "compute.submit",
                                 {"workload": "train", "seed": 9, "steps": 5000})["id"]
    del job
    clicked = "return (() => { for (const r of document.querySelectorAll('#jobs-table tr')) {" \
              " if (r.textContent.includes('train') && r.querySelector('button.cancel')) {" \
              " r.querySelector('button.cancel').click(); return true; } } return false; })()"
    _wait(browser, "the job's row, and its cancel button", lambda: browser.execute_script(
        clicked))
    _wait(browser, "cancelled", lambda: any(
        "train" in r.text and "cancelled" in r.text
        for r in browser.find_elements(By.CSS_SELECTOR, "#jobs-table tr")))


def test_switching_to_the_second_satellite_shows_and_commands_that_one(console) -> None:
    browser, url = console
    from ground.remote import ServerClient

    menu = Select(browser.find_element(By.ID, "satellite"))
    assert [o.get_attribute("value") for o in menu.options] == ["sat-1", "sat-2"]
    menu.select_by_value("sat-2")
    _wait(browser, "sat-2's stream", lambda: browser.find_element(By.ID, "link").text == "live")
    assert browser.find_elements(By.CSS_SELECTOR, "#history tr") == []  # sat-1's are gone
    Select(browser.find_element(By.ID, "command-name")).select_by_value("power.switch")
    args = browser.find_element(By.ID, "command-args")
    args.find_element(By.NAME, "channel").send_keys("3")
    Select(args.find_element(By.NAME, "on")).select_by_value("true")
    browser.find_element(By.ID, "send").click()
    _wait(browser, "the completion report", lambda: (
        cells := browser.find_elements(By.CSS_SELECTOR, "#history tr td.stages"))
        and "completed" in cells[0].text)
    _wait(browser, "sat-2's switch in its housekeeping",
          lambda: int(_cell(browser, "power.switches", "value")) & 0b1000)
    sat1, sat2 = (ServerClient(url, satellite=n)._call("GET", "/api/telemetry")["points"]
                  for n in ("sat-1", "sat-2"))
    assert sat2["power.switches"]["value"] & 0b1000
    assert not sat1["power.switches"]["value"] & 0b1000  # the other satellite untouched
    menu.select_by_value("sat-1")
    _wait(browser, "sat-1 again", lambda: browser.find_element(By.ID, "link").text == "live"
          and browser.find_elements(By.CSS_SELECTOR, "#history tr"))


def test_the_screenshot(console) -> None:
    browser, _ = console
    if os.environ.get("SKYRACK_SCREENSHOT"):
        field = browser.find_element(By.ID, "plot-points")
        field.clear()
        field.send_keys("power.soc_pct,power.solar_power_w,thermal.accelerator_temp_c")
        browser.find_element(By.ID, "plot-go").click()
        time.sleep(3.0)  # a few more packets: ages, values and the plot settle
        browser.save_screenshot(os.environ["SKYRACK_SCREENSHOT"])
