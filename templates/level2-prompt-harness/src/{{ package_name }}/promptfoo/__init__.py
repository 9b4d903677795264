"""promptfoo configs, read as they are: `eval promptfooconfig.yaml` runs a promptfoo
user's suite with no rewrite and no second copy to keep in step.

`notation.py` reads promptfoo's notations (YAML 1.2, assertion names and shorthands,
vars that use vars); `reader.py` turns a whole config into the harness's prompts,
profiles and cases, noting what cannot run here.
"""
