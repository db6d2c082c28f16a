{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["src/fsx.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
