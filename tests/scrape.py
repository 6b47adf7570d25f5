"""`GET /metrics` read as Prometheus reads it: the text format, parsed by prometheus-client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    # Family names as the parser gives them (a counter's without `_total`), and types.
    families: dict[str, str]
    samples: list[Sample]
    text: str

    @classmethod
    def parse(cls, text: str) -> Scrape:
        parsed = list(text_string_to_metric_families(text))
        samples = [sample for family in parsed for sample in family.samples]
        return cls({family.name: family.type for family in parsed}, samples, text)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples `name` whose labels include these (0 when none has)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def since(self, earlier: Scrape, name: str, **labels: str) -> float:
        """How much `value(name, **labels)` grew from the `earlier` scrape to this one."""
        return self.value(name, **labels) - earlier.value(name, **labels)

    def has(self, name: str, **labels: str) -> bool:
        return any(
            sample.name == name and labels.items() <= sample.labels.items()
            for sample in self.samples
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


async def scrape(client: httpx.AsyncClient, url: str = "/metrics") -> Scrape:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape.parse(response.text)
