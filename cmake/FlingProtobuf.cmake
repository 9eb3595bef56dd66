# fling_protobuf_generate(<target> <file.proto>...)
#
# Compiles each .proto with protoc-c into <build>/gen/<target>/ (generated
# code stays out of the source tree and is never edited) and adds the
# generated .pb-c.c files and include directory to <target>. Usable from a
# project that did find_package(fling).
#
#   add_executable(app app.c)
#   fling_protobuf_generate(app hello.proto)
#   # app.c: #include "hello.pb-c.h"
find_program(FLING_PROTOC_C NAMES protoc-c protoc-gen-c)
if(NOT FLING_PROTOC_C)
  message(FATAL_ERROR "protoc-c not found (Debian package protobuf-c-compiler)")
endif()

function(fling_protobuf_generate target)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/gen/${target})
  file(MAKE_DIRECTORY ${out_dir})
  set(srcs)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    get_filename_component(dir ${abs} DIRECTORY)
    get_filename_component(name ${abs} NAME_WE)
    set(c ${out_dir}/${name}.pb-c.c)
    set(h ${out_dir}/${name}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${FLING_PROTOC_C} --c_out=${out_dir} --proto_path=${dir} ${abs}
      DEPENDS ${abs}
      COMMENT "protoc-c ${name}.proto"
      VERBATIM)
    list(APPEND srcs ${c})
  endforeach()
  target_sources(${target} PRIVATE ${srcs})
  target_include_directories(${target} PRIVATE ${out_dir})
endfunction()
