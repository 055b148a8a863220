"""The company profile: get and update (issue 16)."""

from __future__ import annotations

from invoices.v1 import company_profile_pb2 as cpb

from service.domain.errors import Violations
from service.domain.push import AsyncRun
from service.transport import convert as c
from service.transport import parties as p
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources


class ProfileRpcs(Resources):
    async def GetCompanyProfile(
        self, request: cpb.GetCompanyProfileRequest, context: Ctx
    ) -> cpb.GetCompanyProfileResponse:
        profile = await self.h.get_profile(request.company_id)
        return cpb.GetCompanyProfileResponse(profile=p.profile_out(profile))

    async def UpdateCompanyProfile(
        self, request: cpb.UpdateCompanyProfileRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> cpb.UpdateCompanyProfileResponse:
        v = Violations()
        if not request.HasField("profile"):
            v.add("profile", "is required")
        patch = p.profile_in(request.profile, v)
        v.raise_if_any()
        paths = p.profile_paths(request.profile, list(request.update_mask.paths))
        profile, op = await self.h.update_profile(request.company_id, patch, paths, request.profile.etag, run=run)
        return cpb.UpdateCompanyProfileResponse(profile=p.profile_out(profile), push_operation=c.push_out(op))
