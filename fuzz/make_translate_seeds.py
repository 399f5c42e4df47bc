#!/usr/bin/env python3
"""Writes fuzz/corpus/translate/seed-*.yaml: the objects of every scenario under
testdata/scenarios (TLS templates excluded), one YAML stream per scenario file."""
import pathlib
import yaml

root = pathlib.Path(__file__).resolve().parent
out = root / "corpus" / "translate"
out.mkdir(parents=True, exist_ok=True)
for old in out.glob("seed-*"):
    old.unlink()
for path in sorted((root.parent / "testdata" / "scenarios").rglob("*.yaml")):
    try:
        scenario = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:  # YAML 1.2 plain scalars PyYAML refuses (`{path: /a?b}`)
        print(f"skipped {path}: {e.problem}")
        continue
    objects = scenario.get("objects") or []
    if not objects:
        continue
    name = f"seed-{path.parent.name}-{path.stem}.yaml"
    (out / name).write_text(yaml.safe_dump_all(objects, sort_keys=False))
