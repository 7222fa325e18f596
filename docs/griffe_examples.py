"""Griffe extension for the API reference: Keras-style `Example:` sections.

keras-lrn's docstrings, like Keras's, title their examples `Example:` and
do not indent what follows. The Google-style parser reads only an indented
`Examples:` section as examples (where `>>>` lines become code); otherwise
the examples would be rendered as prose. This extension reads a Keras-style
section as that; the docstrings themselves are not changed.

It also shows a class's bases by the public name its source spells
(`keras.layers.Layer`), not by the private module that defines them
(`keras.src.layers.layer.Layer`).
"""

import importlib
import re

import griffe

# A section title at the docstring's margin (Google's and Keras's titles).
_TITLE = re.compile(r"^(Args|Arguments|Call arguments|Attributes|Returns|Yields|Raises|"
                    r"Input shape|Output shape|References?|Notes?|Warnings?|Examples?|"
                    r"See also):\s*$")


def google_examples(docstring):
    """`docstring` with each `Example:` section as an `Examples:` section
    whose lines are indented under its title (up to the next section title
    or the end)."""
    lines, inside, indent = [], False, None
    for line in docstring.splitlines():
        if _TITLE.match(line):
            inside, indent = line.strip() in ("Example:", "Examples:"), None
            lines.append("Examples:" if inside else line)
            continue
        if inside and line.strip():
            if indent is None:  # the section's first line says whether it is indented
                indent = "" if line.startswith((" ", "\t")) else "    "
            line = indent + line
        lines.append(line)
    return "\n".join(lines)


class KerasStyleExamples(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = google_examples(obj.docstring.value)


def public_base(base):
    """A base class by its public name: a private `keras.src.` path becomes
    the name Keras exports the class as (the longest of its export names,
    `keras.layers.Layer` rather than `keras.Layer`)."""
    path = getattr(base, "canonical_path", None) or str(base)
    if ".src." not in path:
        return str(base)  # as the source spells it (resolved later, it could turn private)
    module_name, _, name = path.rpartition(".")
    try:
        exported = getattr(importlib.import_module(module_name), name)._api_export_path
    except (ImportError, AttributeError):
        return str(base)
    names = [exported] if isinstance(exported, str) else list(exported)
    return max(names, key=lambda n: n.count("."))


class PublicBases(griffe.Extension):
    def on_class_members(self, *, cls, **kwargs):
        cls.bases = [public_base(base) for base in cls.bases]
