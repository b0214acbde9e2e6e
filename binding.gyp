{
  "targets": [
    {
      "target_name": "strata",
      "sources": ["native/addon.cc", "native/xsk.cc", "native/tap.cc", "native/bpf.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wno-unused-parameter", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "libraries": ["-lxdp", "-lbpf"]
    }
  ]
}
