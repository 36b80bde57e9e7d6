"""What opsrun works on, as data: the ops repository (`project`, its git `revisions`), its inventories and host
patterns (`inventory`, `patterns`), the run documents (`documents`, pydantic) and the results built on them
(`results`), the secrets a run reads (`secret_sources`) and masks (`secrets`). Imports nothing that acts on a host."""
