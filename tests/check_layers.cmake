# Checks that every quoted #include under ROOT/src and ROOT/include runs down the layers, never
# up or sideways. Run: cmake -DROOT=<source dir> -P tests/check_layers.cmake (ctest does).
#
# A file's component is its folder under src/ (src/batch/records.cpp: batch), or its name for a
# file at src/'s top (src/labels.cpp: labels); everything under include/ is the public API.
# A file may include its own component and any component of a lower layer.
cmake_minimum_required(VERSION 3.16)
if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source dir> -P check_layers.cmake")
endif()

# Bottom to top, one layer per entry (its components separated by commas); components of one
# layer do not include one another.
set(STAM_LAYERS
  "api"                                                # include/stam: what users of the library see
  "util"                                               # text helpers
  "checkpoint,labels,sample,cpu,device,prefetch"       # self-contained pieces
  "decode,preprocess,model,render"                     # frames in, tensors in, logits out;
                                                       # labels drawn on frames, plots
  "pipeline"                                           # one video to a result
  "output"                                             # results as text, JSON, CSV
  "batch,timeline,embed,bench,info"                    # the commands' library halves
  "eval,stream"                                        # batch plus scoring; timeline's windows, live
  "serve"                                              # the HTTP server over the library
  "cli")                                               # the executable
# Headers that are generated into the build tree, not found under ROOT.
set(STAM_GENERATED_HEADERS "version.hpp")

set(rank 0)
foreach(layer IN LISTS STAM_LAYERS)
  string(REPLACE "," ";" members "${layer}")
  foreach(member IN LISTS members)
    set(rank_of_${member} ${rank})
  endforeach()
  math(EXPR rank "${rank} + 1")
endforeach()

function(component_of path out)
  file(RELATIVE_PATH rel "${ROOT}" "${path}")
  if(rel MATCHES "^include/")
    set(${out} "api" PARENT_SCOPE)
  elseif(rel MATCHES "^src/([^/]+)/")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
  else()
    get_filename_component(stem "${rel}" NAME_WE)
    set(${out} "${stem}" PARENT_SCOPE)
  endif()
endfunction()

file(GLOB_RECURSE sources "${ROOT}/src/*.cpp" "${ROOT}/src/*.hpp" "${ROOT}/include/*.hpp")
set(problems "")
set(checked 0)
foreach(source IN LISTS sources)
  file(RELATIVE_PATH source_rel "${ROOT}" "${source}")
  component_of("${source}" from)
  if(NOT DEFINED rank_of_${from})
    string(APPEND problems "\n  ${source_rel}: component '${from}' is in no layer of STAM_LAYERS")
    continue()
  endif()
  get_filename_component(dir "${source}" DIRECTORY)
  file(STRINGS "${source}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*$" "\\1" included "${line}")
    set(target "")
    foreach(base "${dir}" "${ROOT}/src" "${ROOT}/include")
      if(EXISTS "${base}/${included}" AND target STREQUAL "")
        get_filename_component(target "${base}/${included}" ABSOLUTE)
      endif()
    endforeach()
    if(target STREQUAL "")
      if(NOT included IN_LIST STAM_GENERATED_HEADERS)
        string(APPEND problems "\n  ${source_rel}: \"${included}\" is not under src/ or include/")
      endif()
      continue()
    endif()
    math(EXPR checked "${checked} + 1")
    component_of("${target}" to)
    if(from STREQUAL to)
      continue()
    endif()
    if(NOT DEFINED rank_of_${to})
      string(APPEND problems "\n  ${source_rel}: includes \"${included}\", whose component '${to}' is in no layer")
    elseif(NOT rank_of_${to} LESS rank_of_${from})
      if(rank_of_${to} EQUAL rank_of_${from})
        set(way "sideways")
      else()
        set(way "up")
      endif()
      string(APPEND problems
        "\n  ${source_rel} (${from}) includes \"${included}\" (${to}): runs ${way} the layers")
    endif()
  endforeach()
endforeach()

if(problems)
  message(FATAL_ERROR "layering broken:${problems}")
endif()
message(STATUS "layers: ${checked} includes checked, all run down")
