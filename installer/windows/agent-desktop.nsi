; Agent Desktop for Windows: per-machine installer (NSIS 3, Modern UI 2).
;
;   makensis -WX -DVERSION=0.1.0 -DPAYLOAD=dist\agent-desktop -DSETTINGS_TEMPLATE=installer\settings.toml
;            [-DICON=build\icons\agent-desktop.ico] [-DOUTFILE=dist\agent-desktop-0.1.0-setup.exe]
;            installer\windows\agent-desktop.nsi
;
; PAYLOAD is the PyInstaller bundle built on Windows (agent-desktop.exe, supervisor-view.exe,
; agent-cli.exe, interaction-server.exe, _internal\). installer/build.py runs this for you.
;
; IT deployment (see installer/README.md):
;   agent-desktop-setup.exe /S                                   silent install
;   agent-desktop-setup.exe /S /SETTINGS=\\fs\it\settings.toml    ... with the machine settings file
;   agent-desktop-setup.exe /S /D=D:\Apps\Agent Desktop           ... elsewhere (/D= must come last)
;   "%ProgramFiles%\Agent Desktop\uninstall.exe" /S               silent uninstall
; /SETTINGS takes a file path (local or UNC), never a URL: NSIS splits its options at "/".
; Exit code 2: the /SETTINGS file does not exist (nothing was installed).

Unicode true
ManifestDPIAware true

!include MUI2.nsh
!include FileFunc.nsh
!include LogicLib.nsh
!include x64.nsh

!ifndef VERSION
  !error "define VERSION, e.g. -DVERSION=0.1.0"
!endif
!ifndef PAYLOAD
  !error "define PAYLOAD, the directory of the frozen Windows bundle"
!endif
!ifndef SETTINGS_TEMPLATE
  !error "define SETTINGS_TEMPLATE, the commented settings.toml installed when there is none"
!endif
!ifndef OUTFILE
  !define OUTFILE "agent-desktop-${VERSION}-setup.exe"
!endif

!define PRODUCT "Agent Desktop"
!define PUBLISHER "Agent Desktop Team"
!define REG_KEY "Software\AgentDesktop"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\AgentDesktop"
; Machine settings: the file desktop/ui/settings.py reads by default on Windows.
!define SETTINGS_DIR "$APPDATA\AgentDesktop"  ; all users (SetShellVarContext all): C:\ProgramData

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${PRODUCT}"
InstallDirRegKey HKLM "${REG_KEY}" "InstallDir"
RequestExecutionLevel admin
SetCompressor /SOLID lzma
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\agent-desktop.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${PRODUCT}"

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Var SettingsFile

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP|MB_OK "${PRODUCT} needs 64-bit Windows." /SD IDOK
    SetErrorLevel 3
    Abort
  ${EndIf}
  SetRegView 64
  SetShellVarContext all
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/SETTINGS=" $SettingsFile
  ${If} ${Errors}
    StrCpy $SettingsFile ""
  ${EndIf}
  ${If} $SettingsFile != ""
  ${AndIfNot} ${FileExists} $SettingsFile
    MessageBox MB_ICONSTOP|MB_OK "The settings file $SettingsFile does not exist." /SD IDOK
    SetErrorLevel 2
    Abort
  ${EndIf}
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Section "${PRODUCT}" SecMain
  SectionIn RO
  ; An upgrade replaces the program files; the settings below are left alone.
  RMDir /r "$INSTDIR\_internal"
  SetOutPath "$INSTDIR"
  File /r "${PAYLOAD}\*.*"

  ; Machine settings: the /SETTINGS file replaces them; otherwise a first install gets the
  ; commented template and an upgrade keeps what IT put there.
  CreateDirectory "${SETTINGS_DIR}"
  ${If} $SettingsFile != ""
    CopyFiles /SILENT "$SettingsFile" "${SETTINGS_DIR}\settings.toml"
    DetailPrint "Machine settings from $SettingsFile"
  ${ElseIfNot} ${FileExists} "${SETTINGS_DIR}\settings.toml"
    SetOutPath "${SETTINGS_DIR}"
    File "/oname=settings.toml" "${SETTINGS_TEMPLATE}"
    SetOutPath "$INSTDIR"
  ${EndIf}

  CreateDirectory "$SMPROGRAMS\${PRODUCT}"
  CreateShortcut "$SMPROGRAMS\${PRODUCT}\${PRODUCT}.lnk" "$INSTDIR\agent-desktop.exe"
  CreateShortcut "$SMPROGRAMS\${PRODUCT}\Supervisor View.lnk" "$INSTDIR\supervisor-view.exe"

  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "${REG_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKLM "${REG_KEY}" "Version" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\agent-desktop.exe"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "EstimatedSize" "$0"

  ; The self-test's install scope, into the install log (never fails the install).
  nsExec::ExecToLog '"$INSTDIR\agent-desktop.exe" --self-test install'
  Pop $0
  ${If} $0 != 0
    DetailPrint "The self-test found a problem (exit $0): run agent-desktop --self-test"
  ${EndIf}
SectionEnd

Section "Uninstall"
  ; Program files, shortcuts and registration only. Kept: the machine settings in
  ; ${SETTINGS_DIR} and every agent's own settings (HKCU\Software\AgentDesktop) and keyring.
  Delete "$SMPROGRAMS\${PRODUCT}\${PRODUCT}.lnk"
  Delete "$SMPROGRAMS\${PRODUCT}\Supervisor View.lnk"
  RMDir "$SMPROGRAMS\${PRODUCT}"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\agent-desktop.exe"
  Delete "$INSTDIR\supervisor-view.exe"
  Delete "$INSTDIR\agent-cli.exe"
  Delete "$INSTDIR\interaction-server.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  DeleteRegKey HKLM "${REG_KEY}"
SectionEnd
