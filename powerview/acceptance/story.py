"""A9: uploads.log tells the story of the run (the mkdir, each upload and its outcome)."""

from __future__ import annotations

from .context import Context


class Story(Context):
    """A9."""

    # A9: uploads.log tells the story
    def a9(self) -> None:
        def story() -> str:
            lines = self.log.lines()
            mkdir = [x for x in lines if x.get("action") == "mkdir" and x.get("path") == str(self.campaign_dir)]
            assert mkdir and mkdir[0].get("result") == "queued", f"no queued mkdir line for {self.campaign_dir}"
            missing = []
            for sample in self.samples:
                path = str(self.campaign_dir / sample.device / sample.name)
                if not any(
                    x.get("action") == "upload" and x.get("path") == path and x.get("result") == "queued" for x in lines
                ):
                    missing.append(f"upload of {sample.device}/{sample.name}")
                if not any(
                    x.get("action") == "ingest"
                    and x.get("path") == path
                    and x.get("result") == sample.expect
                    and x.get("detail")
                    for x in lines
                ):
                    missing.append(f"result={sample.expect} of {sample.device}/{sample.name}")
            assert not missing, "missing in uploads.log: " + "; ".join(missing)
            return (
                f"mkdir, {len(self.samples)} uploads and their outcomes, the rejection with its cause, "
                f"in {self.log.path}"
            )

        self.check("A9", "uploads.log shows the events", story)
