{
  "targets": [
    {
      "target_name": "aegis_scan",
      "sources": ["src/aegis_scan.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-O3"],
      "cflags_cc": ["-Wall", "-Wno-ignored-attributes", "-O3", "-std=c++17"]
    }
  ]
}
