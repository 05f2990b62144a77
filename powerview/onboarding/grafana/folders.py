"""The company's folder: found by uid (or by title: made by hand or by an older version),
created with PowerView's uid, listed for the dashboards it holds."""

from __future__ import annotations

from .client import seg
from .permissions import Permissions
from .scope import ProvisioningError


class Folders(Permissions):
    """The company's folder."""

    def find_folder(self) -> str | None:
        if self._read(f"/api/folders/{seg(self.names['folder_uid'])}").found:
            return self.names["folder_uid"]
        listing = self._read("/api/folders", ok=(200,), params={"limit": 1000})  # made by hand or an old version
        if not listing.found:
            return None
        return next((f["uid"] for f in listing.body or [] if f.get("title") == self.names["folder_title"]), None)

    def ensure_folder(self) -> tuple[str, bool, bool]:
        """(uid, whether it exists now: in check mode a folder to be created does not, whether this
        run creates it)."""
        uid = self.find_folder()
        if uid:
            return uid, True, False
        answer = self._write(
            f"create folder {self.names['folder_title']}",
            "POST",
            "/api/folders",
            json={"uid": self.names["folder_uid"], "title": self.names["folder_title"]},
            ok=(200, 409),
        )  # 409: made meanwhile (same uid or same title)
        self.run.diff(f"folder {self.names['folder_uid']}", "absent", "present")
        if answer is None:
            return self.names["folder_uid"], False, True
        uid = answer.body["uid"] if answer.status == 200 else self.find_folder()
        if not uid:
            raise ProvisioningError(
                f"folder {self.names['folder_title']}: Grafana answered 409 "
                f"({answer.body.get('message', '')}) but no such folder can be found"
            )
        return uid, True, answer.status == 200

    def dashboards_in(self, folder_uid: str) -> list[str]:
        hits = self._read("/api/search", ok=(200,), params={"type": "dash-db", "folderUIDs": folder_uid}).body or []
        return [h["uid"] for h in hits]
