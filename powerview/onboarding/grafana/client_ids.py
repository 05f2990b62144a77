"""The config-API client ids of a company's views (<company>, <company>_<login>): registered
with the company's bucket, refused when registered with another, unregistered only when they
read this company's bucket."""

from __future__ import annotations

from .config_api import ConfigApi
from .scope import ProvisioningError, Scope


class ClientIds(Scope):
    """The company's client ids in powerview-config-api (nothing without GRAFANA_CONFIG_API_URL)."""

    def check_client(self, client_id: str) -> str | None:
        """The bucket `client_id` reads (None: not registered, or no config API); refused when it
        is another bucket than the company's."""
        if not self.s.config_api_url:
            return None
        bucket = ConfigApi(self.s.config_api_url, self.s.config_api_token).bucket_of(client_id)
        if bucket is not None and bucket != self.names["bucket"]:
            raise ProvisioningError(
                f"config API: client id {client_id} is registered with bucket {bucket}, not {self.names['bucket']}"
            )
        return bucket

    def register_client(self, client_id: str) -> None:
        if not self.s.config_api_url:
            return
        api = ConfigApi(self.s.config_api_url, self.s.config_api_token)
        if self.check_client(client_id) is not None:
            return
        self.run.changes.append(f"register client id {client_id} in the config API")
        self.run.diff(f"config API client {client_id}", "absent", {"bucket": self.names["bucket"]})
        if not self.run.check:
            api.register(client_id, self.names["bucket"])

    def unregister_client(self, client_id: str) -> None:
        """Unregister `client_id` when it reads this company's bucket (the deployed client ids
        collide like the datasource names: company acme_x's is acme user x's)."""
        if not self.s.config_api_url:
            return
        api = ConfigApi(self.s.config_api_url, self.s.config_api_token)
        bucket = api.bucket_of(client_id)
        if bucket is None:
            return
        if bucket != self.names["bucket"]:
            self.run.notes.append(f"config API: client id {client_id} reads bucket {bucket}, not {self.company}: kept")
            return
        self.run.changes.append(f"unregister client id {client_id} from the config API")
        if not self.run.check:
            api.unregister(client_id)
