"""Plot bench/results.json as bench/results.png (requests/s relative to no filter)."""
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = pathlib.Path(__file__).parent
rows = json.loads((here / "results.json").read_text())["variants"]
names = [r["variant"] for r in rows]
ratios = [r["ratio"] for r in rows]
fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.5))
bars = ax.barh(names[::-1], ratios[::-1], color="#4a78b5")
for b, r in zip(bars, rows[::-1]):
    ax.text(b.get_width() + 0.01, b.get_y() + b.get_height() / 2,
            f'{r["ratio"]:.2f}x  ({r["rps"]:.0f} req/s, p99 {r["p99_ms"]:.2f} ms)', va="center", fontsize=8)
ax.set_xlim(0, 1.6)
ax.set_xlabel("requests/s relative to Envoy with no filter (median of interleaved rounds)")
ax.set_title("portcullis on Envoy 1.40, --concurrency 1")
fig.tight_layout()
fig.savefig(here / "results.png", dpi=110)
print(f"wrote {here / 'results.png'}")
