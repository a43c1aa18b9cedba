"""Three weeks of flows through the demo city, recorded through the same services the API uses.

Every day: a lot of pigs goes from a farm to the slaughterhouse, is slaughtered into carcasses
(a transformation), one carcass is cut into joints (another), and carcass and joints go through the
wholesale market to stalls, a supermarket and a canteen, where they are sold by weight; chickens and
(every third day) cattle do the same; three vegetable lots go from origin bases with their origin
certificates and pesticide tests through the vegetable wholesale market to stalls and shops; drug lots
go from the manufacturer through two distributors to five pharmacies, which dispense them box by box.

Near the end: a cabbage lot fails its laboratory pesticide test after part of it was repacked (the lot
and the repacked crates go on hold), the regulator recalls a lot of pigs (every carcass and joint made
from it is recalled), and a few things go wrong the way they do in a real city: chicken sold after its
expiry date, tomatoes whose receipt waited for the farm's shipment, a box of amoxicillin dispensed twice, and a
stall's offline scale syncing a sale of recalled pork after the recall.

All times lie on the ``days`` calendar days before ``anchor`` (midnight, China Standard Time), so
nothing is in the future, and every random choice comes from one seeded generator.
"""

from __future__ import annotations

from traceability.demo.drugs import DrugFlows
from traceability.demo.farms import FarmFlows
from traceability.demo.meat import MeatFlows
from traceability.demo.produce import VegetableFlows
from traceability.services import genealogy


class Story(MeatFlows, VegetableFlows, DrugFlows, FarmFlows):
    """The whole story: every flow, day by day, then the recall."""

    async def run(self) -> None:
        await self.drugs_made()
        await self.farm_records()
        for day in range(self.days):
            await self.plots(day)
            await self.pens(day)
            await self.dairy(day)
            await self.pork(day)
            await self.chicken(day)
            if day % 3 == 1:
                await self.beef(day)
            for i in range(3):
                await self.vegetables(day, i)
            if day == self.paper_day:
                await self.delivered_on_paper(day)
            await self.drugs(day)
        await self.recall()

    # -- the recall -----------------------------------------------------------------------------

    async def recall(self) -> None:
        assert self.city.regulator is not None
        result = await genealogy.recall(
            self.db,
            self.city.regulator,
            {
                "traceCode": self.recalled,
                "level": "I",
                "reason": "产地监督抽检：该批生猪莱克多巴胺（瘦肉精）检测阳性 / "
                "ractopamine found in the farm's samples of these pigs",
                "scope": "徐州市全市",
            },
        )
        self._count(len(result["batches"]))
        for stall, sale in self.deferred:  # an offline scale comes back and syncs a sale made before the recall
            await self.sell(stall, sale)
