# tailgate_add_plugin(<target> <name> [OUTPUT_DIRECTORY <dir>] [NO_INSTALL] [SOURCES] <source>...)
#
# Builds a Tailgate strategy plugin: a MODULE library `<name>.so` (no "lib"
# prefix, symbols hidden except the tg_plugin_* entry points), compiled
# against the SDK only. The host finds it as strategy `<name>`.
#
#   OUTPUT_DIRECTORY  where the .so is written. Default: ${TAILGATE_PLUGIN_OUTPUT_DIR}
#                     when set (the Tailgate tree sets it), else the usual
#                     library output directory.
#   NO_INSTALL        skip the install rule. Otherwise the plugin is installed to
#                     ${CMAKE_INSTALL_LIBDIR}/tailgate/plugins (component "plugins").
#
# Used by the Tailgate tree itself and shipped in the TailgateSDK package, so
# third-party plugins are built exactly like in-tree ones.
include_guard(GLOBAL)
include(GNUInstallDirs)

function(tailgate_add_plugin target name)
  cmake_parse_arguments(PARSE_ARGV 2 TGP "NO_INSTALL" "OUTPUT_DIRECTORY" "SOURCES")
  set(sources ${TGP_SOURCES} ${TGP_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "tailgate_add_plugin(${target} ${name}): no source files given")
  endif()

  add_library(${target} MODULE ${sources})
  target_link_libraries(${target} PRIVATE Tailgate::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX "" SUFFIX ".so" OUTPUT_NAME "${name}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)

  # Export the six entry points and nothing else (C++ template instantiations
  # from the standard library would otherwise be exported as weak symbols).
  if(NOT APPLE AND NOT WIN32)
    set(map_file "${CMAKE_BINARY_DIR}/tailgate_plugin_exports.map")
    if(NOT EXISTS "${map_file}")
      file(WRITE "${map_file}" "{\n  global: tg_plugin_*;\n  local: *;\n};\n")
    endif()
    target_link_options(${target} PRIVATE "LINKER:--version-script=${map_file}")
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${map_file}")
  endif()

  set(out_dir "${TGP_OUTPUT_DIRECTORY}")
  if(NOT out_dir AND TAILGATE_PLUGIN_OUTPUT_DIR)
    set(out_dir "${TAILGATE_PLUGIN_OUTPUT_DIR}")
  endif()
  if(out_dir)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${out_dir}")
  endif()

  if(NOT TGP_NO_INSTALL)
    install(TARGETS ${target}
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/tailgate/plugins COMPONENT plugins)
  endif()

  # In the Tailgate tree, the unit tests load the plugins they test: make
  # building `tailgate_unit_tests` build every plugin first. The test target
  # is defined later (tests/), hence the deferred call at the end of the top
  # directory.
  if(NOT TAILGATE_SDK_FROM_PACKAGE AND TAILGATE_BUILD_TESTS)
    # (EVAL so that the target name is expanded now, not when the call runs.)
    cmake_language(EVAL CODE "cmake_language(DEFER DIRECTORY [[${CMAKE_SOURCE_DIR}]]
      CALL _tailgate_plugin_test_dependency [[${target}]])")
  endif()
endfunction()

function(_tailgate_plugin_test_dependency target)
  if(TARGET tailgate_unit_tests)
    add_dependencies(tailgate_unit_tests ${target})
  endif()
endfunction()
