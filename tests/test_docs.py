"""The documentation site, checked as a reader would use it.

The site is built once per session with `mkdocs build --strict` (every
warning an error: a broken link or anchor, a public name without a
docstring), or taken from `KERAS_LRN_DOCS_SITE` where CI built it already.
Then every internal link of every page (`href` and `src`, to pages, files
and anchors) is followed and every page must have a title and one h1; a
headless browser (Debian's `chromium`) opens each page from a local HTTP
server and must find the same title, no raw TeX (`$$`, `\\frac`) in any
page's visible text (math typeset by the MathJax the site ships), no script
or stylesheet that failed to load and no console error (recorded by a
probe the test server puts first in each page's head). The tests skip, saying why, only where
MkDocs or chromium is not installed (`pip install -e ".[docs]"`,
`apt-get install chromium`); CI installs both.
"""

import concurrent.futures
import functools
import html.parser
import io
import http.server
import importlib.util
import os
import pathlib
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter")
MISSING = [name for name in DOCS_PACKAGES
           if importlib.util.find_spec(name.split(".")[0]) is None
           or importlib.util.find_spec(name) is None]
needs_mkdocs = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("KERAS_LRN_DOCS_SITE"),
    reason=f"the docs tools are not installed ({', '.join(MISSING)}): "
           "pip install -e '.[docs]'")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The built site's folder."""
    built = os.environ.get("KERAS_LRN_DOCS_SITE")
    if built:
        path = pathlib.Path(built)
        assert (path / "index.html").is_file(), f"KERAS_LRN_DOCS_SITE={built} holds no built site"
        return path
    path = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p), NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    return path


class _Page(html.parser.HTMLParser):
    """A page's title, h1 count, element ids and link targets."""

    def __init__(self):
        super().__init__()
        self.title, self.h1s, self.ids, self.links = "", 0, set(), []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "title":
            self._in_title = True
        if tag == "h1":
            self.h1s += 1
        for attribute in ("href", "src"):
            if attrs.get(attribute) is not None:
                self.links.append((tag, attrs[attribute]))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


@functools.lru_cache(maxsize=None)
def _parse(path):
    page = _Page()
    page.feed(pathlib.Path(path).read_text(encoding="utf-8"))
    return page


def _pages(site):
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html")


def _target(site, page, link):
    """The file and anchor an internal link of `page` points to, or None
    for an external one."""
    parsed = urllib.parse.urlsplit(link)
    if parsed.scheme or parsed.netloc or link.startswith(("mailto:", "data:", "javascript:")):
        return None
    if not parsed.path:
        return page, urllib.parse.unquote(parsed.fragment)
    assert not parsed.path.startswith("/"), f"{page}: absolute link {link!r}"
    relative = posixpath.normpath(posixpath.join(
        page.parent.relative_to(site).as_posix(), urllib.parse.unquote(parsed.path)))
    assert not relative.startswith(".."), f"{page}: {link!r} leaves the site"
    target = site / relative
    if target.is_dir() or parsed.path.endswith("/"):
        target = target / "index.html"
    return target, urllib.parse.unquote(parsed.fragment)


@needs_mkdocs
def test_site_has_every_guide_notebook_and_reference_page(site):
    expected = ["index.html", "changelog/index.html"] + [
        f"guides/{name}/index.html" for name in (
            "getting-started", "computation", "conventions", "saving-and-export",
            "learned-lrn", "applications", "performance", "gpu", "troubleshooting",
            "contributing")] + [
        f"examples/{name}/index.html" for name in (
            "01_what_lrn_does", "02_train_alexnet", "03_does_lrn_matter")] + [
        f"api/{name}/index.html" for name in ("layer", "ops", "export", "legacy", "applications")]
    missing = [name for name in expected if not (site / name).is_file()]
    assert not missing


@needs_mkdocs
def test_every_page_has_a_title_and_one_h1(site):
    pages = _pages(site)
    assert len(pages) >= 20
    for path in pages:
        page = _parse(path)
        assert page.title.strip(), f"{path.relative_to(site)} has no <title>"
        assert page.title.strip().endswith("keras-lrn"), (path, page.title)
        assert page.h1s == 1, f"{path.relative_to(site)} has {page.h1s} h1 elements"


@needs_mkdocs
def test_every_internal_link_reaches_its_page_and_anchor(site):
    broken, followed = [], 0
    for path in _pages(site):
        for tag, link in _parse(path).links:
            target = _target(site, path, link)
            if target is None:
                continue
            followed += 1
            file, anchor = target
            where = f"{path.relative_to(site)}: <{tag}> {link!r}"
            if not file.is_file():
                broken.append(f"{where}: no {file.relative_to(site)}")
            elif anchor and file.suffix == ".html" and anchor not in _parse(file).ids:
                broken.append(f"{where}: no id {anchor!r} in {file.relative_to(site)}")
    assert followed > 500  # the check reached the site's links
    assert not broken, "\n".join(broken[:50])


@needs_mkdocs
def test_api_reference_shows_every_public_name_with_its_signature(site):
    import keras_lrn
    import keras_lrn.applications

    layer = (site / "api/layer/index.html").read_text()
    for converter in ("from_tensorflow", "from_caffe", "from_torch", "from_onnx",
                      "to_tensorflow", "to_caffe", "to_torch", "to_onnx"):
        assert f'id="keras_lrn.LocalResponseNormalization.{converter}"' in layer, converter
    ops = (site / "api/ops/index.html").read_text()
    public_ops = getattr(keras_lrn.ops, "__all__", ["local_response_normalization"])
    for name in public_ops:
        assert f'id="keras_lrn.ops.{name}"' in ops, name
    applications = (site / "api/applications/index.html").read_text()
    for name in ("AlexNet", "ZFNet", "GoogLeNet", "from_onnx_zoo", "preprocess_input",
                 "decode_predictions"):
        assert f'id="keras_lrn.applications.{name}"' in applications, name
    # signatures come from the code: a default of the layer's constructor
    assert "even_window_side" in layer and "across_channels" in layer
    assert 'id="keras_lrn.native_for_export"' in (site / "api/export/index.html").read_text()
    assert 'id="keras_lrn.legacy_objects"' in (site / "api/legacy/index.html").read_text()


@needs_mkdocs
def test_performance_tables_are_read_from_the_benchmark_output(site):
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    row = next(line for line in results.splitlines() if line.startswith("| ours | across | 5 |"))
    text = (site / "guides/performance/index.html").read_text()
    for cell in row.strip("|").split("|")[4:8]:
        assert cell.strip() in text
    # the machine as numbers and the commit; no free-form note, no local path
    assert "load average at the start" in text and "CPU:" in text
    assert "keras_lrn source: git " in text
    for report in (ROOT / "benchmarks").glob("*.*"):
        if report.suffix in (".md", ".txt"):
            assert "- note: " not in report.read_text(), report
            assert not re.search(r"(/work/|/home/|/tmp/|/Users/)", report.read_text()), report


# Put first in every page's <head> by the test server (the built files are
# not changed): it records, as elements the dumped DOM shows, each resource
# that failed to load (a <script> with an empty or missing src included),
# each uncaught error or rejection and each console.error call.
PROBE = b"""<script>(function () {
  function record(kind, text) {
    var node = document.createElement("meta");
    node.setAttribute("name", "keras-lrn-probe");
    node.setAttribute("content", kind + ": " + text);
    (document.head || document.documentElement).appendChild(node);
  }
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && (target.src !== undefined || target.href !== undefined)) {
      record("failed to load", "<" + target.tagName.toLowerCase() + "> " +
             (target.getAttribute("src") !== null ? "src=" + JSON.stringify(target.getAttribute("src"))
                                                   : "href=" + target.getAttribute("href")));
    } else {
      record("uncaught error", event.message);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    record("unhandled rejection", String(event.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    record("console error", Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
})();</script>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site, each HTML page with `PROBE` first in its head."""

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        if not path.endswith(".html") or not os.path.isfile(path):
            return super().send_head()
        with open(path, "rb") as file:
            body = file.read().replace(b"<head>", b"<head>" + PROBE, 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@pytest.fixture(scope="module")
def served(site):
    """The site on a local HTTP server: its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _Rendered(_Page):
    """A rendered page: what `_Page` reads, its visible text and what the
    probe recorded."""

    INVISIBLE = {"script", "style", "noscript", "template", "title", "head"}

    def __init__(self):
        super().__init__()
        self.text, self.problems, self._hidden = [], [], []

    def handle_starttag(self, tag, attrs):
        super().handle_starttag(tag, attrs)
        attrs = dict(attrs)
        if tag == "meta" and attrs.get("name") == "keras-lrn-probe":
            self.problems.append(attrs.get("content", ""))
        if tag in self.INVISIBLE:
            self._hidden.append(tag)

    def handle_endtag(self, tag):
        super().handle_endtag(tag)
        if self._hidden and self._hidden[-1] == tag:
            self._hidden.pop()

    def handle_data(self, data):
        super().handle_data(data)
        if not self._hidden:
            self.text.append(data)


def raw_tex(text):
    """The raw TeX a reader would see in `text`: `$$` or `\\frac`."""
    return [marker for marker in ("$$", "\\frac") if marker in text]


def _browser_title(url):
    """What headless chromium renders at `url`: its title, h1 count, visible
    text and the probe's records."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--virtual-time-budget=3000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    page = _Rendered()
    page.feed(result.stdout)
    return page.title.strip(), page.h1s, "".join(page.text), page.problems


@needs_mkdocs
@pytest.mark.skipif(CHROMIUM is None,
                    reason="no headless browser: chromium is not installed "
                           "(apt-get install chromium)")
def test_headless_browser_finds_every_page_title(site, served):
    pages = _pages(site)
    urls = {path: served + path.relative_to(site).as_posix() for path in pages}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        titles = dict(zip(urls, pool.map(_browser_title, urls.values())))
    wrong = [f"{path.relative_to(site)}: browser saw {seen!r}, h1 {h1s}; page says "
             f"{_parse(path).title.strip()!r}"
             for path, (seen, h1s, _, _) in titles.items()
             if seen != _parse(path).title.strip() or h1s != 1]
    # math typeset, every script and stylesheet loaded, no console error
    for path, (_, _, text, problems) in titles.items():
        wrong += [f"{path.relative_to(site)}: raw TeX {marker!r} in the visible text"
                  for marker in raw_tex(text)]
        wrong += [f"{path.relative_to(site)}: {problem}" for problem in problems]
    assert not wrong, "\n".join(wrong)
    # the notebook pages do hold math, and the browser typeset it
    assert any("\\frac" in path.read_text() for path in pages)


def test_the_probe_reports_what_a_reader_would_see(tmp_path):
    """The checks above can fail: raw TeX, a script with an empty src (what
    the site of 0752156 had) and a console error are each reported."""
    page = _Rendered()
    page.feed('<html><head><meta name="keras-lrn-probe" content="failed to load: '
              '<script> src=&quot;&quot;"></head><body><p>$$b = \\frac{a}{k}$$</p>'
              '<script>var t = "$$";</script></body></html>')
    assert raw_tex("".join(page.text)) == ["$$", "\\frac"]
    assert page.problems == ['failed to load: <script> src=""']


def _load_docs_module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(bool(MISSING), reason=f"the docs tools are not installed "
                    f"({', '.join(MISSING)}): pip install -e '.[docs]'")
def test_a_public_name_without_a_docstring_is_reported(tmp_path):
    """The check behind `mkdocs build --strict` failing on an undocumented
    public name (docs/hooks.py), on a package with one of each."""
    import griffe

    hooks = _load_docs_module("hooks")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""A package."""\nfrom pkg.mod import C, documented, undocumented\n'
        '__all__ = ["C", "documented", "undocumented"]\n')
    (package / "mod.py").write_text(
        'def documented():\n    """Says what it does."""\n\n\n'
        'def undocumented():\n    pass\n\n\n'
        'class C:\n    """A class."""\n\n'
        '    def method(self):\n        pass\n\n'
        '    def call(self):\n        pass\n\n'
        '    def _private(self):\n        pass\n')
    loaded = griffe.load("pkg", search_paths=[str(tmp_path)], resolve_aliases=True)
    missing = [name for public in hooks._public_names(loaded)
               for name in hooks._missing_docstrings(f"pkg.{public}",
                                                     hooks._resolved(loaded[public]))]
    assert missing == ["pkg.C.method", "pkg.undocumented"]


@pytest.mark.skipif(bool(MISSING), reason=f"the docs tools are not installed "
                    f"({', '.join(MISSING)}): pip install -e '.[docs]'")
def test_keras_style_example_sections_are_read_as_examples():
    examples = _load_docs_module("griffe_examples")
    docstring = ("Sums.\n\nArgs:\n    x: a tensor.\n\nExample:\n\n>>> total(1)\n1\n\n"
                 "Reference:\n    A paper.")
    assert examples.google_examples(docstring) == (
        "Sums.\n\nArgs:\n    x: a tensor.\n\nExamples:\n\n    >>> total(1)\n    1\n\n"
        "Reference:\n    A paper.")
