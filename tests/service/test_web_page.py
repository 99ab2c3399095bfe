"""The web page in headless Chromium: search, rate three titles, watch the list change.

A screenshot is saved to ``test-artifacts/web_page.png`` at the repository root.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from .server import running_server

webdriver = pytest.importorskip("selenium.webdriver", reason="the web test needs selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: install Debian's chromium and chromium-driver")
    profile = tempfile.mkdtemp(prefix="palate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=420,1400",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def recommended(driver) -> list[str]:  # type: ignore[no-untyped-def]
    # read in one script call: the list may be re-rendered between two WebDriver calls
    return list(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('#recommendations li.recommendation'))"
            ".map((li) => li.dataset.item);"
        )
    )


def test_search_rate_and_watch_recommendations_change(
    browser,
    model_dirs: dict[str, Path],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    wait = WebDriverWait(browser, 20)
    with running_server(model_dirs["cf"], tmp_path / "f.db", tmp_path / "server.log") as server:
        browser.get(server.url + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        before = recommended(browser)
        assert len(before) == 10
        note = browser.find_element(By.ID, "recs-note").text
        assert "popular" in note  # a new visitor sees the fallback, and is told so

        for count, (title, value) in enumerate(
            [("Item 1", 5), ("Item 2", 5), ("Item 3", 1)], start=1
        ):
            box = browser.find_element(By.ID, "search")
            box.clear()
            box.send_keys(title)
            browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
            wait.until(
                lambda d, t=title: d.find_elements(
                    By.XPATH, f"//ul[@id='search-results']/li[1]//span[text()='{t}']"
                )
            )
            browser.find_element(
                By.CSS_SELECTOR, f"#search-results li:first-child button[data-value='{value}']"
            ).click()
            wait.until(lambda d, n=count: d.find_element(By.ID, "rating-count").text == f"({n})")
            # the list is redrawn from the n ratings before the next search
            wait.until(
                lambda d, n=count: d.find_elements(
                    By.CSS_SELECTOR, f"#recommendations[data-ratings='{n}']"
                )
            )

        # the list says how many of the visitor's ratings it reflects
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#recommendations[data-ratings='3']"))
        assert "folded" in browser.find_element(By.ID, "recs-note").text
        after = recommended(browser)
        assert len(after) == 10 and after != before
        assert not {"1", "2", "3"} & set(after)  # rated titles are not recommended again
        whys = browser.find_elements(By.CSS_SELECTOR, "#recommendations .why")
        assert whys and all(w.text.startswith("Why:") for w in whys)

        browser.find_element(By.CSS_SELECTOR, "#recommendations li:first-child .title").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#similar li"))
        assert browser.find_element(By.ID, "similar-section").is_displayed()

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "web_page.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        assert shot.stat().st_size > 1000


def test_with_api_keys_the_page_signs_in_before_rating(
    browser,
    model_dirs: dict[str, Path],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("visitor-key-0123456789 web-visitor\n")
    wait = WebDriverWait(browser, 20)
    with running_server(model_dirs["cf"], tmp_path / "f.db", tmp_path / "server.log",
                        extra=("--api-key-file", str(keys))) as server:
        browser.get(server.url + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        form = browser.find_element(By.ID, "key-form")
        assert form.is_displayed()
        assert "API key" in browser.find_element(By.ID, "key-note").text  # not signed in
        assert len(recommended(browser)) == 10  # browsing needs no key

        user = browser.find_element(By.ID, "key-user")
        user.clear()
        user.send_keys("web-visitor")
        browser.find_element(By.ID, "key-value").send_keys("visitor-key-0123456789")
        form.find_element(By.TAG_NAME, "button").click()
        wait.until(lambda d: d.find_element(By.ID, "key-note").text == "Signed in.")
        assert browser.find_element(By.ID, "user-id").text == "web-visitor"

        box = browser.find_element(By.ID, "search")
        box.send_keys("Item 1")
        browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
        wait.until(lambda d: d.find_elements(
            By.XPATH, "//ul[@id='search-results']/li[1]//span[text()='Item 1']"))
        browser.find_element(
            By.CSS_SELECTOR, "#search-results li:first-child button[data-value='5']"
        ).click()
        wait.until(lambda d: d.find_element(By.ID, "rating-count").text == "(1)")
        stored = httpx.get(server.url + "/v1/users/web-visitor/ratings",
                           headers={"Authorization": "Bearer visitor-key-0123456789"})
        assert [r["item_id"] for r in stored.json()["ratings"]] == [1]


SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def movielens_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Collaborative filtering on MovieLens ml-latest-small, saved with titles and genres."""
    import palate

    if not (SHARED_DATA / "ml-latest-small" / "ratings.csv").is_file():
        pytest.skip("shared ml-latest-small copy not present")
    ml = palate.datasets.movielens(path=SHARED_DATA / "ml-latest-small", download=False)
    model = palate.CollaborativeFiltering(embedding_size=16, epochs=5, seed=0).fit(ml.ratings)
    return palate.save(model, tmp_path_factory.mktemp("ml") / "cf", item_table=ml.items)


def test_a_new_visitor_starts_from_popular_films_and_rating_toy_story_changes_them(
    browser,  # type: ignore[no-untyped-def]
    movielens_model: Path,
    tmp_path: Path,
) -> None:
    wait = WebDriverWait(browser, 30)
    with running_server(movielens_model, tmp_path / "f.db", tmp_path / "server.log") as server:
        browser.get(server.url + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        # no ratings yet: the model's starting list, not an empty "Recommended for you"
        assert browser.find_element(By.ID, "recs-title").text == "Popular now"
        assert browser.find_element(By.ID, "recommendations").get_attribute("data-list") == (
            "popular"
        )
        before = recommended(browser)
        assert len(before) == 10
        assert "Rate a few titles" in browser.find_element(By.ID, "recs-note").text

        box = browser.find_element(By.ID, "search")
        box.send_keys("Toy Story")
        browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
        first = "//ul[@id='search-results']/li[.//span[text()='Toy Story (1995)']]"
        wait.until(lambda d: d.find_elements(By.XPATH, first))
        browser.find_element(By.XPATH, first + "//button[@data-value='5']").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#recommendations[data-ratings='1']"))

        assert browser.find_element(By.ID, "recs-title").text == "Recommended for you"
        assert browser.find_element(By.ID, "recommendations").get_attribute("data-list") == (
            "personal"
        )
        after = recommended(browser)
        assert len(after) == 10 and after != before
        assert "1" not in after  # Toy Story itself is not recommended back
        # the reasons name only what the visitor rated: Toy Story, the one rating
        whys = [w.text for w in browser.find_elements(By.CSS_SELECTOR, "#recommendations .why")]
        assert whys and all(w.startswith("Why:") for w in whys)
        named = [w for w in whys if "because you rated" in w]
        assert named and all("because you rated Toy Story (1995) 5" in w for w in named)

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "web_page_after_rating_toy_story.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        assert shot.stat().st_size > 1000
