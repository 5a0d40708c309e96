# Turns a file into the bytes of a C array initialiser, for pages compiled into the binary:
#   cmake -DIN=pkg/admin/status.html -DOUT=build/gen/admin/status_html.inc -P tools/embed.cmake
# used as `const char page[] = {
# #include "admin/status_html.inc"
# };` (the list ends with a NUL byte).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(src "${IN}" NAME)
file(WRITE "${OUT}.tmp" "/* generated from ${src} by tools/embed.cmake: do not edit */\n${bytes}0x00\n")
file(RENAME "${OUT}.tmp" "${OUT}")
