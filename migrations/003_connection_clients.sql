-- mcp-warden per-client consent: the MCP clients each person approved for a connection.
-- NULL on rows written before this migration: no client is approved yet, so each client asks once.
ALTER TABLE mcp_warden_connections ADD COLUMN IF NOT EXISTS clients text[];
