#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check a test server request log (mender_api.py --log) against the Mender OpenAPI documents.

Usage: openapi_check.py DOCS_DIR LOG_FILE

Python's standard library has no YAML parser, so the three documents are read by a small
parser for the subset of block YAML they use (mappings, lists, quoted and plain scalars, | and
> block scalars, empty {} and []); it refuses anything else rather than guess. For every logged
API exchange it checks, against the operation of that method and path template:
  - the operation exists (the v2 next route and the v1 POST next that Mender's Go client uses
    are not in the open-source documents: skipped);
  - the answer's status is one the operation lists, or 401 on a DeviceJWT-secured operation, or
    came from a fault rule of the test;
  - the request body (the client's) against the requestBody schema: types, required
    properties, enums (local $refs resolved; a reference to a file we do not have only checks
    the JSON type);
  - required query parameters are present;
  - a 200 answer's JSON body (the server's) against the response schema.
Prints what it checked; exits 1 listing every mismatch.
"""

import json
import os
import re
import sys
import urllib.parse


class YamlError(Exception):
    pass


def scalar(text):
    text = text.strip()
    if text == "{}":
        return {}
    if text == "[]":
        return []
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        if text[0] == '"':
            return json.loads(text)
        return text[1:-1].replace("''", "'")
    if text[:1] in "{[&*!%@`":
        raise YamlError("unsupported YAML value: %r" % text)
    return text


def split_key(text):
    """(key, rest) of a 'key: value' line, or None."""
    m = re.match(r"""^("(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s][^:]*?)\s*:(?:\s+(.*)|$)""", text)
    if not m:
        return None
    return scalar(m.group(1)), (m.group(2) or "")


def load_yaml(text):
    lines = []
    for raw in text.split("\n"):
        if not raw.strip() or raw.lstrip().startswith("#"):
            lines.append(None)
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise YamlError("tab indentation")
        lines.append([len(raw) - len(raw.lstrip(" ")), raw.strip(), raw])

    def next_line(i):
        while i < len(lines) and lines[i] is None:
            i += 1
        return i

    def block_scalar(i, indent, style):
        out = []
        while i < len(lines):
            if lines[i] is not None and lines[i][0] <= indent:
                break
            out.append("" if lines[i] is None else lines[i][2])
            i += 1
        body = [l for l in out]
        while body and not body[-1].strip():
            body.pop()
        base = min((len(l) - len(l.lstrip(" ")) for l in body if l.strip()), default=0)
        body = [l[base:] for l in body]
        text = ("\n" if style.startswith("|") else " ").join(body) + "\n"
        return text, i

    def value_after(i, indent, rest):
        """The value of a key (or list item) whose text after the colon is rest."""
        if rest in ("|", "|-", ">", ">-"):
            return block_scalar(i + 1, indent, rest)
        if rest:
            return scalar(rest), i + 1
        j = next_line(i + 1)
        if j < len(lines) and (lines[j][0] > indent or
                               (lines[j][0] == indent and lines[j][1].startswith("-"))):
            return parse(j, lines[j][0])
        return None, i + 1

    def parse(i, indent):
        i = next_line(i)
        if lines[i][1].startswith("- ") or lines[i][1] == "-":
            out = []
            while True:
                i = next_line(i)
                if i >= len(lines) or lines[i][0] != indent or not lines[i][1].startswith("-"):
                    return out, i
                rest = lines[i][1][1:].strip()
                if not rest:
                    v, i = value_after(i, indent, "")
                elif split_key(rest) and not rest[:1] in "'\"":
                    # "- key: value": a mapping whose keys sit two columns in.
                    lines[i] = [indent + 2, rest, " " * (indent + 2) + rest]
                    v, i = parse(i, indent + 2)
                else:
                    v, i = scalar(rest), i + 1
                out.append(v)
        out = {}
        while True:
            i = next_line(i)
            if i >= len(lines) or lines[i][0] < indent:
                return out, i
            if lines[i][0] > indent:
                raise YamlError("line %d: unexpected indentation" % (i + 1))
            if lines[i][1].startswith("- "):
                return out, i
            kv = split_key(lines[i][1])
            if kv is None:
                raise YamlError("line %d: expected 'key: value': %r" % (i + 1, lines[i][1]))
            key, rest = kv
            out[key], i = value_after(i, indent, rest.strip())

    doc, i = parse(next_line(0), 0)
    if next_line(i) < len(lines):
        raise YamlError("line %d: trailing content" % (next_line(i) + 1))
    return doc


class Checker:
    def __init__(self, docs_dir):
        self.ops = []   # (method, regex, template, op, doc)
        for name in sorted(os.listdir(docs_dir)):
            if not name.endswith(".yaml"):
                continue
            with open(os.path.join(docs_dir, name)) as f:
                doc = load_yaml(f.read())
            for template, item in doc["paths"].items():
                rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+",
                                             re.escape(template)) + "$")
                for method, op in item.items():
                    self.ops.append((method.upper(), rx, template, op, doc))
        self.errors = []
        self.seen = {}

    def resolve(self, schema, doc):
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                return None   # another file: not available here
            node = doc
            for part in ref[2:].split("/"):
                node = node[part]
            schema = node
        return schema

    def validate(self, value, schema, doc, where):
        schema = self.resolve(schema, doc)
        if schema is None:
            if not isinstance(value, (dict, list, str)):
                self.errors.append("%s: %r is not JSON data" % (where, value))
            return
        if value is None and str(schema.get("nullable")) == "true":
            return
        kind = schema.get("type")
        types = {"object": dict, "array": list, "string": str, "integer": int,
                 "boolean": bool}
        if kind in types and not isinstance(value, types[kind]):
            self.errors.append("%s: expected %s, got %s" % (where, kind, type(value).__name__))
            return
        if "enum" in schema and value not in schema["enum"]:
            self.errors.append("%s: %r not in %s" % (where, value, schema["enum"]))
        if kind == "object":
            for req in schema.get("required", []):
                if req not in value:
                    self.errors.append("%s: required property %r missing" % (where, req))
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    self.validate(value[key], sub, doc, where + "." + key)
        if kind == "array" and "items" in schema:
            for n, item in enumerate(value):
                self.validate(item, schema["items"], doc, "%s[%d]" % (where, n))

    def check(self, e):
        method, path = e["method"], e["path"]
        if path.startswith("/api/devices/v2/") or (
                method == "POST" and path == "/api/devices/v1/deployments/device/deployments/next"):
            return   # v2, and the v1 POST of the Go client: real, not in the documents (docs/reference §3.2)
        match = [(t, op, doc) for m, rx, t, op, doc in self.ops if m == method and rx.match(path)]
        where = "%s %s" % (method, path)
        if not match:
            self.errors.append("%s: no such operation in the documents" % where)
            return
        template, op, doc = match[0]
        key = "%s %s" % (method, template)
        self.seen[key] = self.seen.get(key, 0) + 1
        status = e.get("status")
        codes = {str(c) for c in op.get("responses", {})}
        secured = op.get("security", doc.get("security")) not in (None, [])
        if not (str(status) in codes or (status == 401 and secured) or e.get("injected") or
                status == 0):
            self.errors.append("%s: status %s not documented (documented: %s)" %
                               (where, status, sorted(codes)))
        for p in op.get("parameters", []):
            if p.get("in") == "query" and str(p.get("required")) == "true":
                q = urllib.parse.parse_qs(e.get("query") or "")
                if not q.get(p["name"], [""])[0]:
                    self.errors.append("%s: required query parameter %s missing" %
                                       (where, p["name"]))
        body = op.get("requestBody")
        if body and "request_body" in e:
            schema = body["content"]["application/json"]["schema"]
            self.validate(e["request_body"], schema, doc, where + " request")
        elif body and str(body.get("required")) == "true" and "injected" not in e:
            self.errors.append("%s: the request has no body" % where)
        if status == 200 and "response_body" in e:
            content = op["responses"]["200"].get("content", {})
            schema = next((c.get("schema") for c in content.values() if c.get("schema")), None)
            if schema:
                self.validate(e["response_body"], schema, doc, where + " answer")


def main():
    docs, log = sys.argv[1], sys.argv[2]
    checker = Checker(docs)
    n = 0
    with open(log) as f:
        for line in f:
            e = json.loads(line)
            if e.get("api"):
                checker.check(e)
                n += 1
    for key, count in sorted(checker.seen.items()):
        print("checked %3d x %s" % (count, key))
    if n == 0:
        checker.errors.append("no API request in the log")
    for err in checker.errors:
        print("MISMATCH: " + err, file=sys.stderr)
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main())
