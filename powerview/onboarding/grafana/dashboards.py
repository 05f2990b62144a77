"""The dashboards of a company's views (powerview_<company>, powerview_<company>_<login>),
rendered from the templates once; one that exists is the customer's: never re-rendered nor
moved, unless a refresh is asked for, which keeps what the customer added."""

from __future__ import annotations

from . import render
from .client import Answer, seg
from .datasources import client_id_of
from .permissions import Permissions
from .scope import ProvisioningError, View


class Dashboards(Permissions):
    """The dashboards of the company's views."""

    def render_dashboard(self, datasource: dict, view: View | None = None) -> dict:
        """The dashboard of `view` from its template, wired to `datasource` (its uid, id, type and
        clientId: an adopted datasource's own, e.g. the deployed <company>_<login>)."""
        view = view or self.own_view()
        datasource_type = datasource.get("type") or self.s.datasource_type
        return render.render_dashboard(
            self.templates_dir,
            datasource_type,
            {
                "company_name": self.company,
                "bucket": self.names["bucket"],
                "dashboard_uid": view.dashboard_uid,
                "dashboard_title": view.dashboard_title,
                "datasource_uid": datasource.get("uid") or view.datasource_uid,
                "datasource_id": int(datasource.get("id") or 0),
                "datasource_name": view.datasource_name,
                "datasource_type": datasource_type,
                "client_id": client_id_of(datasource, view),
                "config_datasource_uid": self.s.config_datasource_uid,
            },
        )

    def ensure_dashboard(
        self,
        folder_uid: str,
        datasource: dict,
        team_id: int | None,
        view: View | None = None,
        refresh: bool = False,
        editors: list[dict] | None = None,
    ) -> None:
        """The dashboard of `view` (default: the company's own) in the company's folder, made once.
        One that exists is the customer's: never re-rendered, never moved, unless `refresh`, which
        re-renders it keeping its title, folder, permissions and what the customer added
        (`render.merge_dashboard`). One in another company's folder is refused (the deployed uids
        collide like the datasource names). Its permissions: the missing ones are added."""
        view = view or self.own_view()
        uid = view.dashboard_uid
        current = self._read(f"/api/dashboards/uid/{seg(uid)}")
        self.check_dashboard_place(current, folder_uid, view)
        if not current.found:
            desired = self.render_dashboard(datasource, view)
            self._save_dashboard(uid, desired, folder_uid)
            self.run.diff(f"dashboard {uid}", "absent", "rendered from template")
        elif refresh:
            self.refresh_dashboard(current, datasource, view)
        elif (current.body.get("meta") or {}).get("folderUid", "") != folder_uid:
            self.run.notes.append(f"dashboard {uid} is in the General folder, not in {folder_uid}: left there")
        self.ensure_permissions(
            "dashboard",
            f"/api/dashboards/uid/{seg(uid)}/permissions",
            self.viewers(team_id) + view.editors() + (editors or []),
            uid,
            exists=current.found or not self.run.check,
            view=view,
            created=not current.found,
        )

    def refresh_dashboard(self, current: Answer, datasource: dict, view: View) -> None:
        """Re-render the existing dashboard `current` (asked for: -e refresh_dashboard=true), in its
        folder, keeping its title and what the customer added; its permissions are not touched
        (saving a dashboard leaves them as they are)."""
        existing = current.body.get("dashboard") or {}
        desired = render.merge_dashboard(existing, self.render_dashboard(datasource, view))
        if desired != existing:
            self._save_dashboard(view.dashboard_uid, desired, (current.body.get("meta") or {}).get("folderUid", ""))
            self.run.diff(f"dashboard {view.dashboard_uid}", "as it was", "re-rendered, its other panels kept")

    def _save_dashboard(self, uid: str, dashboard: dict, folder_uid: str) -> None:
        self._write(
            f"save dashboard {uid}",
            "POST",
            "/api/dashboards/db",
            json={
                "dashboard": dashboard,
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "PowerView provisioning",
            },
        )

    def check_dashboard_place(self, current: Answer, folder_uid: str, view: View) -> None:
        """Refuse the dashboard of `view`'s uid when it is in another folder than the company's."""
        meta = (current.body.get("meta") or {}) if current.found else {}
        where = meta.get("folderUid", "")
        if where and where != folder_uid:
            raise ProvisioningError(
                f"dashboard {view.dashboard_uid} is in folder {meta.get('folderTitle') or where} ({where}), "
                f"not in the folder of company {self.company} ({folder_uid}): it is not the dashboard "
                f"of {view.label}; not touching it"
            )
