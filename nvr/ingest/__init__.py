"""Camera ingest: the RTSP client (:mod:`.rtsp_client`), reconnect back-off (:mod:`.backoff`),
receivers (:mod:`.receivers`), recording jobs (:mod:`.jobs`) and the engine that runs them
(:mod:`.engine`). Import from the modules: the package re-exports nothing."""
