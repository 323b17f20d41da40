# SPDX-License-Identifier: Apache-2.0
# molt_sdk_add_module(<name> <source>...): a native molt module <name>.so built against the SDK
# (find_package(molt-sdk) includes this; molt's own tree uses it for its built-in modules):
#  - a MODULE library linking molt::molt-sdk, named <name>.so (no "lib" prefix); or the target
#    MOLT_SDK_LINK names, when the caller's scope sets it (molt's own tree sets molt-sdk-static
#    for the modules it ships: modules/CMakeLists.txt);
#  - hidden visibility and a version script exporting molt_module_entry alone, so that nothing
#    of the module (nor of a static library linked into it) can clash with molt or another
#    module in molt's process;
#  - -Wl,--no-undefined: a symbol the module uses but nothing provides (a function of a newer
#    SDK, a missing library) fails the link, not dlopen on the device. Left out when the build
#    uses sanitizers (-fsanitize in CMAKE_C_FLAGS, MOLT_SANITIZE, MOLT_FUZZ), whose runtime is
#    linked into the program, not into shared objects.
function(molt_sdk_add_module name)
  molt_sdk_add_shared_object(${name} molt_module_entry ${ARGN})
endfunction()

# molt_sdk_add_shared_object(<name> <symbol> <source>...): <name>.so, built and linked as a module
# is (above) but exporting <symbol> alone: a shared object a module loads itself with dlopen when
# it needs it, e.g. the file module's tar support (modules/file: file-tar.so).
function(molt_sdk_add_shared_object name symbol)
  add_library(${name} MODULE ${ARGN})
  if(MOLT_SDK_LINK)
    target_link_libraries(${name} PRIVATE ${MOLT_SDK_LINK})
  else()
    target_link_libraries(${name} PRIVATE molt::molt-sdk)
  endif()
  set(script ${CMAKE_CURRENT_BINARY_DIR}/${name}.molt-module.sym)
  file(WRITE ${script} "{ global: ${symbol}; local: *; };\n")
  target_link_options(${name} PRIVATE -Wl,--version-script=${script})
  if(NOT CMAKE_C_FLAGS MATCHES "-fsanitize" AND NOT MOLT_SANITIZE AND NOT MOLT_FUZZ)
    target_link_options(${name} PRIVATE -Wl,--no-undefined)
  endif()
  set_target_properties(${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
                        CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
                        LINK_DEPENDS ${script})
endfunction()
