{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["src/fsx.c", "src/gear.c", "src/seal.c", "src/scan.c", "src/direct.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
