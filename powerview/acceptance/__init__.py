"""The checks of `powerview-acceptance` (the command: powerview/cli/acceptance.py), one group a
module, each on the shared `context.Context` of one run, in the order of `plan`:

- `plan`          A0 to A9 in order, then the cleanup (`Plan`, `run_checks`)
- `context`       the run's state, how a check is recorded (PASS, FAIL, SKIP), SFTPGo's calls of
                  on-upload.sh and the wait for the worker's outcome in uploads.log
- `samples`       the generated T302 files and what the plan expects of each
- `logtail`       the lines uploads.log gained during the run
- `deployment`    A0 (the deployment answers) and A1 (manual: SFTPGo's jail)
- `provisioning`  A2 (mkdir of a campaign provisions the company: Grafana, InfluxDB, marker)
- `uploads`       A3-A7 (each file ingested or rejected, its points, its run summary, the catalogue)
- `access`        A8 (a member of the team sees the dashboard)
- `story`         A9 (uploads.log tells the story)
- `cleanup`       A0 (the test company removed everywhere)
"""
