"""Read Fluent Bit configuration files (classic and YAML) the way Fluent Bit does.

Used by ``flbsql check`` (which must see every key, something the proxy ABI cannot
show a plugin), by ``flbsql demo`` to drive the test host when no ``fluent-bit`` is
installed, and by the tests that load every file in ``conf/``.

Classic format: ``[SECTION]`` headers, ``key value`` lines, ``@INCLUDE file``,
``@SET name=value`` and ``${NAME}`` expansion from @SET variables and the
environment. YAML: ``service``, ``plugins`` and ``pipeline: {inputs, filters, outputs}``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Any

__all__ = ["Section", "load", "plugin_paths", "to_host_args"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclasses.dataclass
class Section:
    """One ``[INPUT]``/``[OUTPUT]``/``[SERVICE]``/``[PLUGINS]`` block, keys in order."""

    kind: str  # service, input, filter, output, plugins, parser, ...
    props: list[tuple[str, str]]
    origin: str  # file:line, for messages

    @property
    def name(self) -> str:
        """The plugin name (``Name``), lower case."""
        return self.get("name", "").lower()

    def get(self, key: str, default: str = "") -> str:
        """First value of a key, case-insensitive, as Fluent Bit looks it up."""
        for k, v in self.props:
            if k.lower() == key.lower():
                return v
        return default


def _expand(text: str, variables: dict[str, str]) -> str:
    return _VAR.sub(lambda m: variables.get(m.group(1), os.environ.get(m.group(1), "")), text)


def _load_classic(path: pathlib.Path, variables: dict[str, str]) -> list[Section]:
    sections: list[Section] = []
    current: Section | None = None
    for no, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("@SET "):
            key, _, value = line[5:].partition("=")
            variables[key.strip()] = _expand(value.strip(), variables)
            continue
        if line.upper().startswith("@INCLUDE "):
            pattern = line[9:].strip()
            for inc in sorted(path.parent.glob(pattern)):
                sections += _load_classic(inc, variables)
            current = None
            continue
        if line.startswith("[") and line.endswith("]"):
            current = Section(line[1:-1].strip().lower(), [], f"{path}:{no}")
            sections.append(current)
            continue
        if current is None:
            raise ValueError(f"{path}:{no}: key outside of a section: {line!r}")
        key, _, value = line.partition(" ")
        current.props.append((key.strip(), _expand(value.strip(), variables)))
    return sections


def _load_yaml(path: pathlib.Path) -> list[Section]:
    import yaml

    doc: Any = yaml.safe_load(_expand(path.read_text(), {})) or {}
    sections: list[Section] = []

    def add(kind: str, mapping: dict[str, Any], where: str) -> None:
        props = []
        for k, v in mapping.items():
            if k == "processors":
                continue
            if isinstance(v, bool):
                v = "on" if v else "off"
            props.append((str(k), "" if v is None else str(v)))
        sections.append(Section(kind, props, where))

    if isinstance(doc.get("service"), dict):
        add("service", doc["service"], f"{path}:service")
    if doc.get("plugins"):
        sections.append(
            Section("plugins", [("path", str(p)) for p in doc["plugins"]], f"{path}:plugins")
        )
    for inc in doc.get("includes", []) or []:
        sections += load(path.parent / inc)
    pipeline = doc.get("pipeline") or {}
    for kind in ("inputs", "filters", "outputs"):
        for i, item in enumerate(pipeline.get(kind) or []):
            add(kind[:-1], item, f"{path}:pipeline.{kind}[{i}]")
    return sections


def load(path: str | os.PathLike[str]) -> list[Section]:
    """Every section of a classic (.conf) or YAML (.yaml/.yml) Fluent Bit config."""
    p = pathlib.Path(path)
    if p.suffix in (".yaml", ".yml"):
        return _load_yaml(p)
    return _load_classic(p, {})


def plugin_paths(sections: list[Section], base: pathlib.Path) -> list[str]:
    """The .so files a config loads: [PLUGINS]/plugins: entries and plugins_file."""
    paths = [v for s in sections if s.kind == "plugins" for k, v in s.props if k.lower() == "path"]
    for s in sections:
        if s.kind == "service" and s.get("plugins_file"):
            pf = pathlib.Path(s.get("plugins_file"))
            pf = pf if pf.is_absolute() else base / pf
            paths += plugin_paths(load(pf), pf.parent)
    return [p if os.path.isabs(p) else str(base / p) for p in paths]


def to_host_args(sections: list[Section]) -> list[str]:
    """Command-line arguments for the test host equivalent to the config's pipeline."""
    args: list[str] = []
    for s in sections:
        if s.kind not in ("input", "output"):
            continue
        args += ["-i" if s.kind == "input" else "-o", s.name]
        for k, v in s.props:
            if k.lower() == "name":
                continue
            if k.lower() == "tag" and s.kind == "input":
                args += ["-t", v]
            elif k.lower() == "match" and s.kind == "output":
                args += ["-m", v]
            else:
                args += ["-p", f"{k}={v}"]
    return args
