# CPACK_PRE_BUILD_SCRIPTS: strips the debug info of the static libraries
# staged for the packages (CPACK_STRIP_FILES only strips executables and
# shared objects).
find_program(_sb_strip NAMES strip REQUIRED)
file(GLOB_RECURSE _sb_archives "${CPACK_TEMPORARY_DIRECTORY}/*.a")
foreach(_sb_archive IN LISTS _sb_archives)
  execute_process(COMMAND ${_sb_strip} --strip-debug "${_sb_archive}" COMMAND_ERROR_IS_FATAL ANY)
endforeach()
