from bersinar.migrations import run_env
from services.mitra.models import Base

run_env(Base.metadata)
