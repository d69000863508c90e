"""The generators and measuring scripts of the bundled workflows and blueprints, run as modules from
the repository root (`python -m tools.make_workflows`, `python -m tools.screenshots`,
`python -m tools.vue_sizes`), so they import each other as one package and change no search path.

Those that drive the real server and frontend reuse the tests' harness (tools/harness.py). The shell
scripts and the stand-alone dependency checks here (installed_pins.py, wheel_matrix.py) run as files.
"""
