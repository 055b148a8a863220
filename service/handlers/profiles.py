"""The company profile use cases (issue 16): read it, and update it as one unit of work (its push
operation, data type companyProfiles, and event in the same commit)."""

from __future__ import annotations

import asyncio

from service.domain import profile
from service.domain.errors import FieldViolation, InvalidArgument
from service.domain.profile import CompanyProfile
from service.domain.push import AsyncRun, Change, ChangeType, PushOperation
from service.handlers.invoice_base import InvoiceUseCases
from service.handlers.writes import require_company
from service.outbound import pdf
from service.store import profiles as store
from service.store.db import connection

PROFILES = "companyProfiles"
_MODES = frozenset({"rounding_mode", "tax_rounding_mode"})


def resource_name(company_id: str) -> str:
    return f"companies/{company_id}/profile"


class ProfileUseCases(InvoiceUseCases):
    async def get_profile(self, company_id: str) -> CompanyProfile:
        require_company(company_id)
        async with connection(self.pool) as conn:
            return await store.load(conn, company_id)

    async def update_profile(
        self, company_id: str, patch: CompanyProfile, paths: set[str], etag: str, *, run: AsyncRun | None = None
    ) -> tuple[CompanyProfile, PushOperation]:
        """The masked fields of `patch` onto the profile; a stale etag is ABORTED, a bad value INVALID_ARGUMENT
        naming its field, and either changes nothing."""
        async with self.uow(company_id, "UpdateCompanyProfile", run=run, data_type=PROFILES) as uow:
            current = await store.load(await uow.connection(), company_id, lock=True)
            new = profile.apply_update(current, patch, paths, etag)
            form = new.numbering(uow.numbering)[0]
            if form != current.numbering(uow.numbering)[0]:
                ahead = await store.numbers_ahead(await uow.connection(), company_id, form.prefix)
                profile.check_numbers_ahead(form, ahead)
            # Decoded whole, off the event loop (it holds only the profile's row: finalizations read it unlocked).
            if "logo" in paths and new.logo and (problem := await asyncio.to_thread(pdf.logo_problem, new.logo)):
                raise InvalidArgument([FieldViolation("profile.logo", problem)])
            new.version, new.update_time = current.version + 1, uow.now
            uow.pieces.extend(store.save_pieces(new, modes_changed=bool(paths & _MODES)))
            uow.record(Change(ChangeType.MODIFIED, resource_name(company_id), PROFILES))
            await uow.commit()
        if paths & _MODES:  # this process's creates use the new defaults at once (the others within the TTL)
            self.set_money_defaults(company_id, new.money_defaults)
        return new, uow.operation
