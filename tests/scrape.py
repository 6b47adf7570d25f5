"""`GET /metrics` read as Prometheus reads it: the text format, parsed by prometheus-client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    samples: list[Sample]
    text: str

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        return cls(samples, text)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples `name` whose labels include these (0 when none has)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

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
