"""Print size in bounded memory: one scale's objective computed tile by tile, exactly.

- :mod:`~impasto.tiling.grid`: the halo the network needs, tile borders and their movement between steps.
- :mod:`~impasto.tiling.objective`: the two-pass tiled objective (global Gram statistics, then each
  tile's gradient with the statistics' gradient fixed) and what cannot be tiled.
- :mod:`~impasto.tiling.memory`: the memory model of a scale, whole or tiled, and the tile-size chooser.
- :mod:`~impasto.tiling.seams`: the seam figure (gradient energy along tile borders against interiors).

The engine uses it for a scale whose estimate exceeds ``Config.max_memory`` (default ``auto``: the
machine's available memory); :mod:`~impasto.tiling.executors` runs the tiles here, in worker processes or
on Ray; :mod:`~impasto.tiling.cost` says what a run will cost (for the engine, and from a Config and the
images' sizes alone for the studio's ``POST /api/cost`` and job-memory guard and ``impasto batch --show-cost``).
"""

from impasto.tiling.grid import TileSchedule, alignment, required_halo, tile_grid
from impasto.tiling.objective import TiledObjective, check_tileable, tile_backward, tile_statistics

__all__ = [
    "TileSchedule", "TiledObjective", "alignment", "check_tileable", "required_halo", "tile_backward",
    "tile_grid", "tile_statistics",
]
