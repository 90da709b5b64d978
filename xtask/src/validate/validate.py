"""Validates Kubernetes manifests against the offline schemas of kubernetes-validate.

Reads each file as kubectl would: YAML 1.1 (so an unquoted `yes` is a boolean) or a stream of JSON
values. `kind: List` documents are validated item by item. Prints one line per problem and exits 1
if there is any.
"""
import json
import sys

import kubernetes_validate
import yaml


def documents(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith(("{", "[")):
        decoder, pos = json.JSONDecoder(), 0
        while pos < len(text):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                break
            value, pos = decoder.raw_decode(text, pos)
            yield value
    else:
        yield from yaml.safe_load_all(text)


def objects(doc):
    if isinstance(doc, dict) and doc.get("kind") == "List":
        for item in doc.get("items") or []:
            yield from objects(item)
    elif doc is not None:
        yield doc


def main():
    version, paths = sys.argv[1], sys.argv[2:]
    problems, count = 0, 0
    for path in paths:
        try:
            docs = list(documents(path))
        except Exception as e:  # noqa: BLE001 - any parse error is a finding
            print(f"{path}: cannot parse: {e}")
            problems += 1
            continue
        for n, doc in enumerate(docs, 1):
            for obj in objects(doc):
                count += 1
                kind = obj.get("kind", "?") if isinstance(obj, dict) else "?"
                name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj, dict) else "?"
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except Exception as e:  # noqa: BLE001
                    first = str(e).splitlines()[0]
                    print(f"{path}: document {n}: {kind}/{name}: {first}")
                    problems += 1
    print(f"validated {count} objects in {len(paths)} files against Kubernetes {version}: {problems} problems")
    sys.exit(1 if problems else 0)


main()
