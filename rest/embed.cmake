# Turns a file into a C++ source defining `extern const char NAME[]` and `NAME_size`, so the REST
# shard serves its web page without a file system path at run time. A missing input (MQTT.js when
# npm has not run) becomes an empty file.
#   cmake -DINPUT=... -DOUTPUT=... -DNAME=... -P embed.cmake
if(EXISTS "${INPUT}")
  file(READ "${INPUT}" hex HEX)
else()
  set(hex "")
endif()
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," body "${hex}")
file(WRITE "${OUTPUT}"
  "// Generated from ${INPUT} by rest/embed.cmake. Do not edit.\n"
  "#include <cstddef>\n"
  "extern const char ${NAME}[] = {${body} 0};\n"
  "extern const std::size_t ${NAME}_size = ${size};\n")
