"""Users and groups: resolving the principals a link assigns (graph-cts-api §2.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from .apps import odata_string
from .client import GraphClient

__all__ = ["DirectoryApi"]


class DirectoryApi:
    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def get_user(
        self, id_or_upn: str, *, select: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = {"$select": ",".join(select)} if select else None
        return (await self.client.get(f"/users/{quote(id_or_upn)}", params=params)).json_object()

    async def get_group(self, group_id: str) -> dict[str, Any]:
        return (await self.client.get(f"/groups/{quote(group_id)}")).json_object()

    async def find_groups(self, display_name: str) -> list[dict[str, Any]]:
        """Groups whose display name is exactly ``display_name`` (there may be several)."""
        return await self.client.list_all(
            "/groups",
            filter=f"displayName eq {odata_string(display_name)}",
            select=["id", "displayName"],
        )

    async def group_members(self, group_id: str) -> list[dict[str, Any]]:
        """Direct members only: nested groups are not expanded, as CTS does."""
        return await self.client.list_all(f"/groups/{quote(group_id)}/members", top=999)
