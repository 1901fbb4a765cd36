"""Documents people print, file and sign, drawn as PDF by the gateway from what the
services answer over RPC: the surat rujukan (``letter``) and the monthly report
(``report``). docs/documents.md says how they are made and tested."""
