-- LuaRocks package of the Lua module msys.audit: Momentum's
-- msys.audit.inbound_session_count() answered by the connaudit auditor.
-- Build from a checkout, for Lua 5.1 (or LuaJIT), 5.3 or 5.4:
--   luarocks --lua-version=5.4 make rockspecs/connaudit-msys-audit-scm-1.rockspec
-- The module reads the maps that `connaudit load` (root) pinned; it links
-- the query half of the connaudit library (compiled in here, so that no
-- libconnaudit needs installing) and the system's libbpf.
rockspec_format = "3.0"
package = "connaudit-msys-audit"
version = "scm-1"

-- `luarocks make` from a checkout builds the files in it and ignores source.url;
-- set the url to where the repository is published before uploading the rock.
source = {
   url = "git+file:///usr/src/connaudit",
}

description = {
   summary = "msys.audit.inbound_session_count() and connections() for Lua 5.1-5.4 and LuaJIT, from connaudit's eBPF counts",
   detailed = [[
Counts open inbound TCP sessions per service and client CIDR, as Momentum's
msys.audit.inbound_session_count(cidr, servicename) does, from the BPF maps
of the connaudit auditor (Linux 5.12 or later). Loading the auditor needs
root; reading the counts needs only access to its pins.
]],
   license = "LGPL-2.1-only OR BSD-2-Clause",
   labels = { "ebpf", "tcp", "momentum" },
}

supported_platforms = { "linux" }

dependencies = {
   "lua >= 5.1, < 5.5",
}

external_dependencies = {
   LIBBPF = {
      header = "bpf/libbpf.h",
      library = "bpf",
   },
}

build = {
   type = "builtin",
   modules = {
      ["msys.audit"] = {
         sources = {
            "lua/audit.c",
            "user/batch.c",
            "user/cidr.c",
            "user/cluster_query.c",
            "user/count.c",
            "user/errors.c",
            "user/handle.c",
            "user/iter.c",
            "user/monitors.c",
            "user/plan.c",
            "user/table.c",
            "user/rates.c",
            "user/services.c",
            "user/sysfs.c",
            "user/textfile.c",
         },
         defines = { "_GNU_SOURCE" },
         incdirs = { "include", "user", "lua", "$(LIBBPF_INCDIR)" },
         libdirs = { "$(LIBBPF_LIBDIR)" },
         libraries = { "bpf" },
      },
   },
}
