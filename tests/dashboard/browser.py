"""Debian's chromium, headless, driven by Selenium through Debian's chromedriver (never a downloaded browser)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--lang=zh-CN"]


def available() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        return "chromium and chromium-driver are not installed: run `make setup`"
    return None


class Browser:
    """One headless chromium with a fresh profile; ``size`` is the window in CSS pixels."""

    def __init__(self, size: tuple[int, int] = (1366, 900)):
        self.profile = tempfile.mkdtemp(prefix="hallq-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in FLAGS:
            opts.add_argument(f)
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.add_argument(f"--window-size={size[0]},{size[1]}")
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)

    def get(self, url: str) -> None:
        self.driver.get(url)

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, css: str) -> None:
        """Click the element; found again when the live page swapped it between finding and clicking (a stale
        element is refused before any click reaches the page, so nothing is clicked twice)."""
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(50):
            try:
                self.find(css).click()
                return
            except StaleElementReferenceException:
                time.sleep(0.02)
        raise AssertionError(f"{css} kept being replaced while it was clicked")

    def text(self, css: str) -> str:
        """The element's text; read again when the live page swapped the element between finding and reading."""
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(50):
            try:
                els = self.finds(css)
                return els[0].text if els else ""
            except StaleElementReferenceException:
                time.sleep(0.02)
        raise AssertionError(f"{css} kept being replaced while its text was read")

    def wait(self, cond: Callable[[], object], timeout: float = 30.0, what: str = "a condition") -> object:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                v = cond()
                if v:
                    return v
            except Exception as exc:  # the page may be swapping the element right now
                last = exc
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))

    def login(self, base: str, name: str, password: str) -> None:
        self.get(base + "/login")
        self.find("input[name=name]").send_keys(name)
        self.find("input[name=password]").send_keys(password)
        self.find("button[type=submit]").click()
        self.wait(lambda: "/login" not in self.driver.current_url or self.finds(".error"), what="the sign-in")

    def screenshot(self, path: Path, full: bool = True) -> Path:
        """A PNG of the page (the whole page height when ``full``)."""
        if full:
            h = self.driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
            w = self.driver.get_window_size()["width"]
            self.driver.set_window_size(w, min(max(int(h) + 140, 600), 4000))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path

    def pdf(self, path: Path) -> Path:
        """The page printed as the browser prints it (A4), as PDF."""
        import base64

        out = self.driver.execute_cdp_cmd("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69,
                                                              "printBackground": True, "preferCSSPageSize": True})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(out["data"]))
        return path

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
