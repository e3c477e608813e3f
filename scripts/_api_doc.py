"""Render docs/api.md from the comments in proto/modelctl/v1/*.proto.

The comments are read from protoc's SourceCodeInfo (a FileDescriptorSet written with
`--include_source_info`), not by parsing .proto text: a location's `path` names the element
(message 4/i, field 4/i/2/j, enum 5/i, value 5/i/2/j, service 6/i, method 6/i/2/j) and it
carries that element's leading, trailing and detached comments exactly as protoc saw them.

An RPC's comment ends with two lines the reference shows apart and tests check:
`Role: viewer|operator|admin.` and `Errors: ...` (the codes it returns, and when). A detached
`--- name ---` comment above an RPC starts a group of RPCs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from google.protobuf import descriptor_pb2

PACKAGE = "modelctl.v1"
# DescriptorProto / EnumDescriptorProto / ServiceDescriptorProto field numbers used in location paths.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM, _VALUE, _METHOD = 2, 3, 4, 2, 2
_GROUP = re.compile(r"^-+\s*(.+?)\s*-+$")
_WELL_KNOWN = "https://protobuf.dev/reference/protobuf/google.protobuf/#"
_SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}


@dataclass(frozen=True)
class Element:
    """One documentable element: what it is, its full name, its comment, and where it is declared."""

    kind: str  # service, rpc, message, field, enum, value
    name: str  # modelctl.v1.Deployment, modelctl.v1.Deployment.id, modelctl.v1.ModelController.DeployModel
    comment: str
    file: str


@dataclass(frozen=True)
class RpcDoc:
    """An RPC comment split into what the reference shows apart."""

    description: str
    #: The role's name alone ("admin"), as POLICIES spells it in lowercase.
    role: str | None
    #: The whole `Role:` line, with any reason given ("admin (it names every credential)").
    role_text: str | None
    errors: str | None


@dataclass
class _Comments:
    by_path: dict[tuple[int, ...], descriptor_pb2.SourceCodeInfo.Location] = field(default_factory=dict)

    def text(self, path: tuple[int, ...]) -> str:
        loc = self.by_path.get(path)
        if loc is None:
            return ""
        return _clean(loc.leading_comments) or _clean(loc.trailing_comments)

    def group(self, path: tuple[int, ...]) -> str | None:
        """The `--- name ---` comment set apart above an element (a blank line after it), if any."""
        loc = self.by_path.get(path)
        for detached in reversed(loc.leading_detached_comments if loc else []):
            found = _GROUP.match(_clean(detached))
            if found:
                return found.group(1)
        if path[-1] == 0 and len(path) > 2:
            # Right after the opening brace, protoc hands such a comment to the parent as its trailing one.
            parent = self.by_path.get(path[:-2])
            found = _GROUP.match(_clean(parent.trailing_comments)) if parent else None
            if found:
                return found.group(1)
        return None


def _clean(comment: str) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in comment.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip()


def _comments(f: descriptor_pb2.FileDescriptorProto) -> _Comments:
    c = _Comments()
    for loc in f.source_code_info.location:
        c.by_path[tuple(loc.path)] = loc
    return c


def split_rpc_comment(comment: str) -> RpcDoc:
    """Description, role and errors of an RPC comment whose last lines start `Role:` and `Errors:`."""
    parts: dict[str, list[str]] = {"": [], "Role:": [], "Errors:": []}
    key = ""
    for line in comment.splitlines():
        for marker in ("Role:", "Errors:"):
            if line.startswith(marker):
                key, line = marker, line.removeprefix(marker).strip()
        parts[key].append(line.strip() if key else line)
    role_text = " ".join(parts["Role:"]).strip().rstrip(".").strip() or None
    role = role_text.split()[0].strip(".,;:") if role_text else None
    errors = " ".join(parts["Errors:"]).strip() or None
    return RpcDoc("\n".join(parts[""]).strip(), role, role_text, errors)


def _files(fds: descriptor_pb2.FileDescriptorSet) -> list[descriptor_pb2.FileDescriptorProto]:
    # controller.proto (the service) first, then the rest by name: a stable order that reads top-down.
    ours = [f for f in fds.file if f.package == PACKAGE]
    return sorted(ours, key=lambda f: (not f.service, f.name))


def _walk_messages(prefix: str, messages, path: tuple[int, ...], kind_number: int
                   ) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
    for i, m in enumerate(messages):
        name = f"{prefix}.{m.name}"
        here = (*path, kind_number, i)
        yield name, m, here
        yield from _walk_messages(name, m.nested_type, here, _NESTED)


def _walk_enums(prefix: str, f: descriptor_pb2.FileDescriptorProto
                ) -> Iterator[tuple[str, descriptor_pb2.EnumDescriptorProto, tuple[int, ...]]]:
    for i, e in enumerate(f.enum_type):
        yield f"{prefix}.{e.name}", e, (_ENUM, i)
    for name, m, path in _walk_messages(prefix, f.message_type, (), _MESSAGE):
        for i, e in enumerate(m.enum_type):
            yield f"{name}.{e.name}", e, (*path, _NESTED_ENUM, i)


def elements(fds: descriptor_pb2.FileDescriptorSet) -> list[Element]:
    """Every service, RPC, message, field, enum and enum value of the package, with its comment."""
    out: list[Element] = []
    for f in _files(fds):
        c = _comments(f)
        prefix = f.package
        for i, s in enumerate(f.service):
            out.append(Element("service", f"{prefix}.{s.name}", c.text((_SERVICE, i)), f.name))
            for j, m in enumerate(s.method):
                out.append(Element("rpc", f"{prefix}.{s.name}.{m.name}", c.text((_SERVICE, i, _METHOD, j)), f.name))
        for name, m, path in _walk_messages(prefix, f.message_type, (), _MESSAGE):
            if m.options.map_entry:
                continue
            out.append(Element("message", name, c.text(path), f.name))
            for j, fld in enumerate(m.field):
                out.append(Element("field", f"{name}.{fld.name}", c.text((*path, _FIELD, j)), f.name))
        for name, e, path in _walk_enums(prefix, f):
            out.append(Element("enum", name, c.text(path), f.name))
            for j, v in enumerate(e.value):
                out.append(Element("value", f"{name}.{v.name}", c.text((*path, _VALUE, j)), f.name))
    return out


# --- rendering ----------------------------------------------------------------------------------------------


def _anchor(full_name: str) -> str:
    return full_name.removeprefix(PACKAGE + ".").lower().replace(".", "-")


class _Types:
    """Links from a fully qualified type name to its section (ours) or the protobuf reference (well-known)."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.maps: dict[str, descriptor_pb2.DescriptorProto] = {}
        for f in fds.file:
            for name, m, _ in _walk_messages(f".{f.package}", f.message_type, (), _MESSAGE):
                if m.options.map_entry:
                    self.maps[name] = m

    def link(self, type_name: str) -> str:
        name = type_name.lstrip(".")
        if name.startswith(PACKAGE + "."):
            short = name.removeprefix(PACKAGE + ".")
            return f"[`{short}`](#{_anchor(name)})"
        if name.startswith("google.protobuf."):
            short = name.removeprefix("google.protobuf.")
            return f"[`{name}`]({_WELL_KNOWN}{short.lower()})"
        return f"`{name}`"

    def of(self, fld: descriptor_pb2.FieldDescriptorProto) -> str:
        if fld.type_name in self.maps:
            key, value = self.maps[fld.type_name].field
            return f"map<{self.of(key)}, {self.of(value)}>"
        if fld.type_name:
            return self.link(fld.type_name)
        return f"`{_SCALARS[fld.type]}`"


def _label(fld: descriptor_pb2.FieldDescriptorProto, m: descriptor_pb2.DescriptorProto, types: _Types) -> str:
    if fld.type_name in types.maps:
        return "map"
    if fld.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return "repeated"
    if fld.proto3_optional:
        return "optional"
    if fld.HasField("oneof_index"):
        return f"oneof `{m.oneof_decl[fld.oneof_index].name}`"
    return ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _paragraphs(text: str) -> str:
    return text or "*(undocumented)*"


def _render_service(f, types: _Types, out: list[str]) -> None:  # type: ignore[no-untyped-def]
    c = _comments(f)
    for i, s in enumerate(f.service):
        full = f"{f.package}.{s.name}"
        out += [f'<a id="{_anchor(full)}"></a>', "", f"## Service `{full}`", "", _paragraphs(c.text((_SERVICE, i))), ""]
        group: str | None = None
        index: list[str] = []
        body: list[str] = []
        for j, m in enumerate(s.method):
            path = (_SERVICE, i, _METHOD, j)
            found = c.group(path)
            if found and found != group:
                group = found
                index += ["", f"**{group}**", ""]
                body += [f"### {group.capitalize()} RPCs", ""]
            rpc = split_rpc_comment(c.text(path))
            request = ("stream " if m.client_streaming else "") + types.link(m.input_type)
            response = ("stream " if m.server_streaming else "") + types.link(m.output_type)
            streaming = {(True, False): "client streaming", (False, True): "server streaming",
                         (True, True): "bidirectional streaming"}.get((m.client_streaming, m.server_streaming))
            anchor = _anchor(f"{full}.{m.name}")
            first = rpc.description.split("\n\n")[0].replace("\n", " ")
            index.append(f"- [`{m.name}`](#{anchor}) — {_cell(first)}")
            body += [f'<a id="{anchor}"></a>', "", f"#### `{m.name}`", "",
                     f"{m.name}({request}) → {response}" + (f" *({streaming})*" if streaming else ""), "",
                     _paragraphs(rpc.description), "",
                     f"- **Role:** {_cell(rpc.role_text) if rpc.role_text else '*(not stated)*'}",
                     f"- **Errors:** {_cell(rpc.errors) if rpc.errors else '*(not stated)*'}", ""]
        out += ["RPCs:", *index, "", *body]


def _render_messages(f, types: _Types, out: list[str]) -> None:  # type: ignore[no-untyped-def]
    c = _comments(f)
    for name, m, path in _walk_messages(f.package, f.message_type, (), _MESSAGE):
        if m.options.map_entry:
            continue
        short = name.removeprefix(f.package + ".")
        out += [f'<a id="{_anchor(name)}"></a>', "", f"### `{short}`", "", _paragraphs(c.text(path)), ""]
        if not m.field:
            out += ["No fields.", ""]
            continue
        out += ["| field | type | label | description |", "|---|---|---|---|"]
        for j, fld in enumerate(m.field):
            out.append(f"| `{fld.name}` | {types.of(fld)} | {_label(fld, m, types)} | "
                       f"{_cell(c.text((*path, _FIELD, j)))} |")
        out.append("")


def _render_enums(f, out: list[str]) -> None:  # type: ignore[no-untyped-def]
    c = _comments(f)
    for name, e, path in _walk_enums(f.package, f):
        short = name.removeprefix(f.package + ".")
        out += [f'<a id="{_anchor(name)}"></a>', "", f"### `{short}` (enum)", "", _paragraphs(c.text(path)), "",
                "| value | number | description |", "|---|---|---|"]
        for j, v in enumerate(e.value):
            out.append(f"| `{v.name}` | {v.number} | {_cell(c.text((*path, _VALUE, j)))} |")
        out.append("")


def render(fds: descriptor_pb2.FileDescriptorSet) -> str:
    """The whole reference, as Markdown: the service and its RPCs, then each file's enums and messages."""
    types = _Types(fds)
    files = _files(fds)
    out = ["# modelctl API reference", "",
           "<!-- Generated from proto/modelctl/v1/*.proto by `make proto` (scripts/gen_protos.py); "
           "do not edit by hand. -->", "",
           f"Package `{PACKAGE}`. Every RPC below says the role its token needs and the errors it returns; "
           "the errors any call can return are listed once, in the service's description. Field names are "
           "the protobuf names, which the CLI's `-o json` also prints.", ""]
    out += ["Contents:", ""]
    for f in files:
        for s in f.service:
            out.append(f"- [Service `{s.name}`](#{_anchor(f'{f.package}.{s.name}')}) and its RPCs")
    for f in files:
        names = [name for name, _, _ in _walk_enums(f.package, f)]
        names += [name for name, m, _ in _walk_messages(f.package, f.message_type, (), _MESSAGE)
                  if not m.options.map_entry]
        if names:
            out.append(f"- `{f.name}`: " + ", ".join(types.link(n) for n in names))
    out.append("")
    for f in files:
        _render_service(f, types, out)
    for f in files:
        if not (f.message_type or f.enum_type):
            continue
        out += [f"## Types in `{f.name}`", ""]
        _render_enums(f, out)
        _render_messages(f, types, out)
    return "\n".join(out).rstrip() + "\n"
