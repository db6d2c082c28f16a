{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["src/fsx.c", "src/gear.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
