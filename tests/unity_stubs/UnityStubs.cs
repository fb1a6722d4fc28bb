// Minimal stand-ins for the UnityEngine / UnityEditor types the shipped Unity scripts use, so that
// tests can compile those scripts with mcs. Only the members the scripts use, with the signatures of
// Unity's real API; the bodies do nothing. The UnityEditor part is compiled only with UNITY_EDITOR
// defined (as in Unity), so compiling the runtime script without it proves it needs no editor types.

using System;

namespace UnityEngine
{
    public class Object
    {
        public string name { get; set; }
    }

    public class ScriptableObject : Object
    {
        public static T CreateInstance<T>() where T : ScriptableObject
        {
            return null;
        }
    }

    public class TextAsset : Object
    {
        public string text { get { return null; } }
    }

    public sealed class AudioClip : Object
    {
    }

    public sealed class Resources
    {
        public static T Load<T>(string path) where T : Object
        {
            return null;
        }
    }

    public static class JsonUtility
    {
        public static T FromJson<T>(string json)
        {
            return default(T);
        }

        public static void FromJsonOverwrite(string json, object objectToOverwrite)
        {
        }
    }

    public class Debug
    {
        public static void Log(object message)
        {
        }

        public static void LogWarning(object message)
        {
        }
    }

    public enum AudioClipLoadType
    {
        DecompressOnLoad = 0,
        CompressedInMemory = 1,
        Streaming = 2,
    }

    public enum AudioCompressionFormat
    {
        PCM = 0,
        Vorbis = 1,
        ADPCM = 2,
        MP3 = 3,
        VAG = 4,
        HEVAG = 5,
        XMA = 6,
        AAC = 7,
        GCADPCM = 8,
        ATRAC9 = 9,
    }
}

#if UNITY_EDITOR
namespace UnityEditor
{
    public class AssetImporter : UnityEngine.Object
    {
    }

    public enum AudioSampleRateSetting
    {
        PreserveSampleRate = 0,
        OptimizeSampleRate = 1,
        OverrideSampleRate = 2,
    }

    public struct AudioImporterSampleSettings
    {
        public UnityEngine.AudioClipLoadType loadType;
        public AudioSampleRateSetting sampleRateSetting;
        public uint sampleRateOverride;
        public UnityEngine.AudioCompressionFormat compressionFormat;
        public float quality;
        public int conversionMode;
        public bool preloadAudioData;  // since Unity 2022.2
    }

    public sealed class AudioImporter : AssetImporter
    {
        public bool forceToMono { get; set; }
        public bool loadInBackground { get; set; }
        public bool preloadAudioData { get; set; }  // obsolete since Unity 2022.2
        public AudioImporterSampleSettings defaultSampleSettings { get; set; }
    }

    public class AssetPostprocessor
    {
        public string assetPath { get; set; }
        public AssetImporter assetImporter { get { return null; } }
#if UNITY_2020_2_OR_NEWER
        public UnityEditor.AssetImporters.AssetImportContext context { get { return null; } }
#endif

        public virtual uint GetVersion()
        {
            return 0;
        }

        public virtual int GetPostprocessOrder()
        {
            return 0;
        }
    }

    [Flags]
    public enum ImportAssetOptions
    {
        Default = 0,
        ForceUpdate = 1,
        ForceSynchronousImport = 8,
        ImportRecursive = 256,
        DontDownloadFromCacheServer = 8192,
        ForceUncompressedImport = 16384,
    }

    public sealed class AssetDatabase
    {
        public static void ImportAsset(string path, ImportAssetOptions options = ImportAssetOptions.Default)
        {
        }

        public static void StartAssetEditing()
        {
        }

        public static void StopAssetEditing()
        {
        }
    }

    [AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
    public sealed class MenuItem : Attribute
    {
        public MenuItem(string itemName)
        {
        }
    }
}

#if UNITY_2020_2_OR_NEWER
namespace UnityEditor.AssetImporters
{
    public class AssetImportContext
    {
        public void DependsOnSourceAsset(string path)
        {
        }
    }
}
#endif
#endif
