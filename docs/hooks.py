"""MkDocs hooks for the keras-lrn site (`hooks:` in mkdocs.yml).

- The notebooks in `examples/` are pages of the site as they are committed,
  with their outputs (mkdocs-jupyter renders them; nothing is executed),
  and `benchmarks/window_size.png` an image of the performance guide.
- Every public name must have a docstring: the API reference is generated
  from them, so a public name without one is a warning, and `mkdocs build
  --strict` (CI) fails. The public names are those of `keras_lrn.__all__`,
  `keras_lrn.ops.__all__` (every public function of the module while it has
  no `__all__`) and `keras_lrn.applications.__all__`, with their public
  methods; each must also appear on a page of the API reference.
- A notebook page's table of contents points at the headings' real ids
  (mkdocs-jupyter derives the entries from the notebook's Markdown, which
  drops inline code from a heading's anchor, while the rendered heading keeps
  it: "The tfds pipelines for `imagenet2012`" would be a broken link).
- `<!-- benchmark-results: PATH -->` in a page includes a file that a
  benchmark script wrote (`benchmarks/RESULTS.md`), read at build time; the
  reports record the machine as numbers and the commit, never a local path.
- Math is typeset in the reader's browser by MathJax 3, served by the site
  itself: `on_post_build` copies MathJax's CHTML component and fonts from the
  `django-static-mathjax` package (in the `docs` extra) into
  `assets/mathjax/`, and `on_post_page` replaces the MathJax 2 block that
  nbconvert writes into a notebook page (a script whose `src` is empty) with
  MathJax 3's configuration and that local script. Nothing loads from a CDN.
- `<!-- readme: NAME -->` in a page includes the README's section between
  `<!-- NAME -->` and `<!-- /NAME -->` (the intro, the conventions table, the
  install lines, the quick start): one text, in the README and on the site.
"""

import logging
import pathlib
import re
import shutil

import griffe
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "examples"
log = logging.getLogger("mkdocs.hooks.keras_lrn")

# The objects whose public names must all have docstrings and appear in the
# API reference; a module's public names are its `__all__`.
PUBLIC_MODULES = ("keras_lrn", "keras_lrn.ops", "keras_lrn.applications")
# Public names that are data, not code: documented in their module's text.
DATA_NAMES = {"keras_lrn.__version__", "keras_lrn.applications.ZOO_NETWORKS",
              "keras_lrn.ops", "keras_lrn.applications"}


@event_priority(100)  # before mkdocs-jupyter converts the notebooks
def on_files(files, config):
    """Adds the notebooks `examples/NN_*.ipynb` (and the benchmark plot)."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        # read from the repository's examples/, published as examples/NAME/
        files.append(File(f"examples/{path.name}", src_dir=str(ROOT),
                          dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    # the benchmark's plot, beside the performance guide that shows it
    files.append(File.generated(config, "guides/window_size.png",
                                abs_src_path=str(ROOT / "benchmarks" / "window_size.png")))
    return files


def on_pre_build(config):
    """Warns (so `--strict` fails) for each public name without a
    docstring, and for each one the API reference does not show."""
    package = griffe.load("keras_lrn", search_paths=[str(ROOT)],
                          resolve_aliases=True, resolve_external=False)
    documented = _documented_identifiers(pathlib.Path(config["docs_dir"]) / "api")
    for module_path in PUBLIC_MODULES:
        module = package if module_path == "keras_lrn" else package[module_path.split(".", 1)[1]]
        for name in _public_names(module):
            path = f"{module_path}.{name}"
            if path in DATA_NAMES:
                continue
            obj = _resolved(module[name])
            if not _documented(package, path, obj, documented):
                log.warning("public name %s is not in the API reference "
                            "(docs/api/*.md)", path)
            for missing in _missing_docstrings(path, obj):
                log.warning("public name %s has no docstring", missing)


def _public_names(module):
    if module.exports is not None:
        return sorted(str(name) for name in module.exports)
    # No __all__: every public function defined in the module.
    return sorted(name for name, member in module.members.items()
                  if not name.startswith("_") and not member.is_alias
                  and member.kind is griffe.Kind.FUNCTION)


def _resolved(obj):
    """The object a public name stands for: through imports, and through
    a module-level synonym (`LRN = LocalResponseNormalization`)."""
    while True:
        if obj.is_alias:
            obj = obj.final_target
        elif (obj.kind is griffe.Kind.ATTRIBUTE and isinstance(obj.value, griffe.ExprName)
              and obj.value.name in obj.parent.members):
            obj = obj.parent.members[obj.value.name]
        else:
            return obj


def _documented_identifiers(api_dir):
    """The identifiers of the `::: identifier` blocks of the API pages, and
    of the members those blocks list (`members:`)."""
    identifiers = set()
    for page in api_dir.glob("*.md"):
        text = page.read_text()
        for identifier, options in re.findall(r"^::: *([\w.]+)\n((?:[ \t]+.*\n)*)", text, re.M):
            members = re.findall(r"^\s+- (\w+)\s*$", options, re.M)
            identifiers.update(f"{identifier}.{m}" for m in members)
            identifiers.add(identifier)
            if members:
                identifiers.add(identifier + ".")  # only the listed members
    return identifiers


def _documented(package, path, obj, documented):
    """`path` is shown: by itself, through another public name of the same
    object, or as a member of a module block that lists no members."""
    targets = set()
    for identifier in documented:
        if identifier.endswith("."):
            continue
        try:
            targets.add(_resolved(package[identifier.split(".", 1)[1]]).path
                        if "." in identifier else identifier)
        except (KeyError, griffe.AliasResolutionError):
            continue
    parent = path.rsplit(".", 1)[0]
    whole_module = (parent != "keras_lrn" and parent in documented
                    and parent + "." not in documented)
    return path in documented or obj.path in targets or whole_module


def _missing_docstrings(path, obj):
    if obj.kind is griffe.Kind.ATTRIBUTE:
        return []  # e.g. `AlexNet = zoo.with_zoo_weights(...)`: checked at run time below
    missing = [] if obj.docstring and obj.docstring.value.strip() else [path]
    if obj.kind is griffe.Kind.CLASS:
        for name, member in obj.members.items():
            if name.startswith("_") or member.is_alias:
                continue
            if member.kind is griffe.Kind.FUNCTION and not (
                    member.docstring and member.docstring.value.strip()):
                if not _overrides_keras(name):
                    missing.append(f"{path}.{name}")
    return missing


def _overrides_keras(name):
    """Keras's own Layer methods (build, call, get_config, ...) are
    documented by Keras; an override needs no docstring of its own."""
    return name in {"build", "call", "compute_output_shape", "compute_output_spec",
                    "get_config", "from_config"}


def readme_section(name, readme=None):
    """The README's text between `<!-- NAME -->` and `<!-- /NAME -->`, its
    links rewritten for a page of `docs/guides/` or `docs/` (see
    `on_page_markdown`)."""
    text = (ROOT / "README.md").read_text() if readme is None else readme
    match = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", text, re.S)
    if not match:
        raise ValueError(f"README.md has no section <!-- {name} --> ... <!-- /{name} -->")
    return match.group(1)


def _readme_links(markdown, page):
    """README links (`docs/guides/x.md`, `examples/...`) as links of `page`."""
    depth = page.file.src_uri.count("/")
    up = "../" * depth

    def relink(match):
        target = match.group(2)
        if target.startswith("docs/"):
            target = up + target[len("docs/"):]
        elif not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            log.warning("README section included in %s links to %s, which is not "
                        "part of the site", page.file.src_uri, target)
        return f"{match.group(1)}({target})"

    return re.sub(r"(\[[^\]]*\])\(([^)\s]+)\)", relink, markdown)


def on_page_markdown(markdown, page, config, files):
    """Expands `<!-- benchmark-results: PATH -->` (a path from the
    repository root) into that file's text, read now, and
    `<!-- readme: NAME -->` into the README's section NAME."""
    markdown = re.sub(r"<!-- readme: ([\w-]+) -->",
                      lambda m: _readme_links(readme_section(m.group(1)), page), markdown)

    def include(match):
        path = match.group(1)
        text = (ROOT / path).read_text()
        if not path.endswith(".md"):
            return f"```text\n{text.rstrip()}\n```\n"
        return _one_level_down(text)

    return re.sub(r"<!-- benchmark-results: (\S+) -->", include, markdown)


def _one_level_down(markdown):
    """The headings of an included file, one level down (its title becomes
    a section of the page), code blocks left as they are."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines) + "\n"


_HEADING_ID = re.compile(r"<h[1-6][^>]*\bid=\"([^\"]+)\"")


def on_page_content(html, page, config, files):
    """Points a notebook page's table of contents at its headings' ids."""
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    ids = _HEADING_ID.findall(html)
    entries = list(_flatten(page.toc))
    if len(entries) == len(ids):
        for entry, heading_id in zip(entries, ids):
            entry.id = heading_id
    else:
        log.warning("%s: %d headings but %d table-of-contents entries",
                    page.file.src_uri, len(ids), len(entries))
    return html


def _flatten(toc):
    for entry in toc:
        yield entry
        yield from _flatten(entry.children)


MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui")
_NBCONVERT_MATHJAX = re.compile(
    r"<!-- Load mathjax -->\s*<script src=\"[^\"]*\">\s*</script>\s*"
    r"<!-- MathJax configuration -->\s*<script type=\"text/x-mathjax-config\">.*?</script>", re.S)
# MathJax 3's settings for what nbconvert configured for MathJax 2: $...$ and
# \(...\) inline, $$...$$ and \[...\] displayed, AMS environments.
_MATHJAX_CONFIG = """<script>
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
        displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
        processEscapes: true, processEnvironments: true, tags: "ams"}
};
</script>
<script defer src="%s"></script>"""


def _mathjax_root():
    import mathjax  # django-static-mathjax: MathJax's release files, in the docs extra
    return pathlib.Path(mathjax.__file__).parent / "static" / "mathjax"


def on_post_page(output, page, config):
    """A notebook page loads the site's own MathJax instead of nbconvert's
    MathJax 2 block (whose `src` mkdocs-jupyter leaves empty)."""
    if not _NBCONVERT_MATHJAX.search(output):
        return output
    src = get_relative_url("assets/mathjax/tex-chtml.js", page.url or ".")
    return _NBCONVERT_MATHJAX.sub(lambda _: _MATHJAX_CONFIG % src, output, count=1)


def on_post_build(config):
    """Copies MathJax (its CHTML component, fonts, TeX extensions and menu,
    and its license) into the site's `assets/mathjax/`."""
    source = _mathjax_root()
    target = pathlib.Path(config["site_dir"]) / "assets" / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    for name in MATHJAX_FILES:
        if (source / "es5" / name).is_dir():
            shutil.copytree(source / "es5" / name, target / name)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / "es5" / name, target / name)
    shutil.copy2(source / "LICENSE", target / "LICENSE")
