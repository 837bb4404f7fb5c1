# Turns a text file into a C++ source defining sw::api::kOpenApiSpec.
file(READ "${IN}" content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE "${OUT}" "#include <string_view>\nnamespace sw::api {\nstatic const char kData[] = {${bytes} 0};\nextern const std::string_view kOpenApiSpec{kData, sizeof(kData) - 1};\n}\n")
