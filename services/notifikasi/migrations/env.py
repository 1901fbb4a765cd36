from bersinar.migrations import run_env
from services.notifikasi.models import Base

run_env(Base.metadata)
