# fling_protobuf_generate(<target> <file.proto>...)
#
# Compiles each .proto with protoc-c into <build>/gen/<target>/ (generated
# code stays out of the source tree and is never edited), adds the
# generated .pb-c.c files to <target> and that folder to its include path.
# The folder is PUBLIC: targets that link <target> see the generated
# headers too, so the code can live in a library of its own. Usable from a
# project that did find_package(fling).
#
#   add_executable(app app.c)
#   target_link_libraries(app PRIVATE fling::fling)
#   fling_protobuf_generate(app hello.proto)
#   # app.c: #include "hello.pb-c.h"
#
# or, with the generated code in a library that server and client share
# (STATIC or SHARED alike):
#
#   add_library(kvproto STATIC)
#   fling_protobuf_generate(kvproto kv.proto)
#   target_link_libraries(kvproto PUBLIC fling::fling)  # brings libprotobuf-c
#   add_executable(server server.c)
#   target_link_libraries(server PRIVATE kvproto)       # server.c: "kv.pb-c.h"
#
# The include folder is a build-tree path ($<BUILD_INTERFACE:...>), so a
# project may still install(EXPORT) the library; it then installs the
# headers it wants to ship itself.
find_program(FLING_PROTOC_C NAMES protoc-c protoc-gen-c)
if(NOT FLING_PROTOC_C)
  message(FATAL_ERROR "protoc-c not found (Debian package protobuf-c-compiler)")
endif()

function(fling_protobuf_generate target)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "fling_protobuf_generate: no target named '${target}'"
                        " (create it first with add_executable or add_library)")
  endif()
  if(NOT ARGN)
    message(FATAL_ERROR "fling_protobuf_generate(${target}): no .proto file given")
  endif()
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
    list(APPEND srcs ${c} ${h})
  endforeach()
  target_sources(${target} PRIVATE ${srcs})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${out_dir}>)
endfunction()
