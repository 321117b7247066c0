-- LuaRocks config for SANITIZE=1 runs (LUAROCKS_CONFIG, set by the
-- Makefile): luarocks locates Lua from the lua5.4 first in PATH, which is
-- then tests/sanitize/wrap; point it at Debian's interpreter instead.
lua_interpreter = "lua5.4"
variables = { LUA_DIR = "/usr", LUA_BINDIR = "/usr/bin" }
