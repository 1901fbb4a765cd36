from bersinar.migrations import run_env
from services.laporan.models import Base

run_env(Base.metadata)
